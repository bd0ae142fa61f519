"""The mLSTM (Beck et al. 2024, xLSTM) against its paper's unstabilised recurrence, written out
here, and its parallel form against the recurrent step: outputs, the final state (C, n, m) and
every gradient, with lengths, both directions, chunks and long sequences; finite for large
inputs; then gradcheck, the operator, compile, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor
from torch.autograd import gradcheck
from torch.func import functional_call

import lstmlab
from lstmlab import MLSTM, MLSTMCell, kernels
from lstmlab.kernels.mlstm import CHUNK, _parallel, mlstm_parallel
from lstmlab.nn import ShapeError

DT = torch.float64
I, H, HEADS, B, T = 3, 4, 2, 3, 7
D = H // HEADS


def paper_sequence(cell: MLSTMCell, x: Tensor) -> Tensor:
    """Beck et al. 2024, eqs. 19-27 without the stabiliser, from a zero state: x (T, B, I)."""
    w, bias = cell.weight_ih, cell.bias_ih
    C = torch.zeros(x.shape[1], HEADS, D, D, dtype=x.dtype)
    n = torch.zeros(x.shape[1], HEADS, D, dtype=x.dtype)
    out = []
    for x_t in x:
        z = x_t @ w.T + bias
        q, k, v = (z[:, j * H : (j + 1) * H].reshape(-1, HEADS, D) for j in range(3))
        k = k / math.sqrt(D)
        o = z[:, 3 * H : 4 * H].sigmoid()
        i = z[:, 4 * H : 4 * H + HEADS].exp()[..., None]  # the exponential input gate
        f = z[:, 4 * H + HEADS :].sigmoid()[..., None]
        C = f[..., None] * C + i[..., None] * torch.einsum("bha,bhc->bhac", v, k)
        n = f * n + i * k
        h = torch.einsum("bhac,bhc->bha", C, q) / (n * q).sum(-1, keepdim=True).abs().clamp(min=1)
        out.append(o * h.reshape(-1, H))
    return torch.stack(out)


def build(seed: int = 0, **kwargs) -> MLSTM:
    torch.manual_seed(seed)
    layer = MLSTM(I, H, num_heads=HEADS, dtype=DT, **kwargs)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0, 0.8)
    return layer


def random_state(lead: int, batch: int = B) -> tuple[Tensor, ...]:
    C = torch.randn(lead, batch, HEADS * D * D, dtype=DT)
    n = torch.randn(lead, batch, HEADS * D, dtype=DT)
    m = torch.randn(lead, batch, HEADS, dtype=DT)
    return tuple(p.requires_grad_() for p in (C, n, m))


def results(layer, x, hx, lengths):
    out, state = layer(x, hx, lengths=lengths)
    g = torch.Generator().manual_seed(1)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in (out, *state))
    leaves = [x, *(hx or ()), *layer.parameters()]
    return [out, *state, *torch.autograd.grad(loss, leaves)]


def check_against_loop(layer, x, hx, lengths, **tol):
    fast = results(layer, x, hx, lengths)
    with kernels.disabled():
        slow = results(layer, x, hx, lengths)
    for k, (a, b) in enumerate(zip(fast, slow, strict=True)):
        torch.testing.assert_close(a, b, **tol, msg=lambda m: f"result {k}: {m}")


def test_layer_is_the_papers_unstabilised_recurrence():
    """The stabiliser m changes no output; the ε of the normaliser moves it by ~1e-6 here."""
    layer = build(seed=1)
    with torch.no_grad():
        layer.weight_ih_l0.mul_(0.5)
    x = torch.randn(T, B, I, dtype=DT)
    expected = paper_sequence(layer.cells[0], x)
    for path in (kernels.disabled, torch.no_grad):
        with path():
            out, _ = layer(x)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("steps", [1, 5, CHUNK + 9])
def test_parallel_form_is_the_recurrent_form_with_its_final_state(steps):
    """The paper's parallel form (here from any initial state, in one block) against the step."""
    cell = build(seed=2).cells[0]
    x = torch.randn(steps, B, I, dtype=DT)
    C, n, m = (p[0].detach() for p in random_state(1))
    state, outs = (C, n, m), []
    for t in range(steps):
        h, state, _ = cell.step(x[t], state)
        outs.append(h)
    q, k, v, o, log_i, log_f = cell.project(x)
    heads = [t.view(steps, B, HEADS, D).permute(1, 2, 0, 3) for t in (q, k, v)]
    h_tilde, C_T, n_T, m_T = _parallel(
        *heads,
        log_f.permute(1, 2, 0),
        log_i.permute(1, 2, 0),
        C.view(B, HEADS, D, D),
        n.view(B, HEADS, D),
        m,
    )
    h = torch.sigmoid(o) * h_tilde.permute(2, 0, 1, 3).flatten(-2)
    torch.testing.assert_close(h, torch.stack(outs), atol=1e-12, rtol=1e-10)
    for got, want in zip((C_T.flatten(1), n_T.flatten(1), m_T), state, strict=True):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("lengths", [[T, 2, 5], [1, T, 4], None])
def test_parallel_path_equals_step_loop_with_lengths_and_directions(lengths):
    layer = build(seed=3, num_layers=2, bidirectional=True)
    x = torch.randn(T, B, I, dtype=DT, requires_grad=True)
    hx = random_state(4)
    lengths = None if lengths is None else torch.tensor(lengths)
    check_against_loop(layer, x, hx, lengths, atol=1e-12, rtol=1e-10)


def test_chunks_hand_on_the_exact_state():
    """Longer than a block, padded and reversed: every result still the step loop's."""
    layer = build(seed=4, bidirectional=True)
    steps = 2 * CHUNK + 5
    x = torch.randn(steps, 2, I, dtype=DT, requires_grad=True)
    check_against_loop(
        layer, x, random_state(2, 2), torch.tensor([steps, CHUNK + 3]), atol=1e-11, rtol=1e-9
    )


def test_padding_never_reaches_the_state():
    layer = build(seed=5, bidirectional=True)
    x = torch.randn(T, 2, I, dtype=DT)
    lengths = torch.tensor([T, 3])
    out, state = layer(x, lengths=lengths)
    x[3:, 1] = torch.inf
    out2, state2 = layer(x, lengths=lengths)
    torch.testing.assert_close(out, out2)
    assert bool((out[3:, 1] == 0).all())
    alone, state_alone = layer(x[:3, 1:])
    torch.testing.assert_close(out[:3, 1:], alone)
    for a, b, c in zip(state, state2, state_alone, strict=True):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a[:, 1:], c)


def test_long_sequences_in_float32():
    """T = 1024: the parallel form's error against a float64 step loop is the float32 loop's."""
    torch.manual_seed(6)
    layer = MLSTM(5, 8, num_heads=2, dtype=DT)
    x = torch.randn(1024, 2, 5, dtype=DT)
    with torch.no_grad():
        fast64, _ = layer(x)
        with kernels.disabled():
            truth, _ = layer(x)
            loop32, _ = layer.float()(x.float())
        fast32, _ = layer(x.float())
    torch.testing.assert_close(fast64, truth, atol=1e-12, rtol=1e-10)
    loop_error = float((loop32.double() - truth).abs().max())
    fast_error = float((fast32.double() - truth).abs().max())
    assert fast_error <= 4 * loop_error + 1e-6, (fast_error, loop_error)
    torch.testing.assert_close(fast32, loop32, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("exponential_forget", [False, True])
def test_finite_for_inputs_of_magnitude_1e3(exponential_forget):
    torch.manual_seed(7)
    layer = MLSTM(I, 8, num_heads=2, bidirectional=True, exponential_forget=exponential_forget)
    x = (1e3 * torch.randn(40, 2, I)).requires_grad_()
    for path in (kernels.disabled, torch.enable_grad):
        with path():
            out, state = layer(x, lengths=torch.tensor([40, 25]))
            grads = torch.autograd.grad(out.square().sum(), [x, *layer.parameters()])
        assert all(bool(t.isfinite().all()) for t in (out, *state, *grads))
    with torch.no_grad():
        fast, _ = layer(x)
        with kernels.disabled():
            slow, _ = layer(x)
    torch.testing.assert_close(fast, slow, atol=1e-3, rtol=1e-4)


def test_gradcheck_readable_cell_and_fast_path():
    layer = build(seed=8, bidirectional=True)
    x = torch.randn(4, 2, I, dtype=DT, requires_grad=True)
    params = dict(layer.named_parameters())
    hx = random_state(2, 2)

    def f(x, *tensors):
        weights, state = tensors[: len(params)], tensors[len(params) :]
        out, final = functional_call(
            layer, dict(zip(params, weights)), (x, state), {"lengths": torch.tensor([4, 2])}
        )
        return out, *final

    assert gradcheck(f, (x, *params.values(), *hx), fast_mode=True)
    with kernels.disabled():
        assert gradcheck(f, (x, *params.values(), *hx), fast_mode=True)


def test_operator_opcheck():
    torch.manual_seed(9)
    q, k, v = (torch.randn(2, HEADS, 5, D) for _ in range(3))
    log_f, log_i = (
        torch.nn.functional.logsigmoid(torch.randn(2, HEADS, 5)),
        torch.randn(2, HEADS, 5),
    )
    C0, n0, m0 = torch.randn(2, HEADS, D, D), torch.randn(2, HEADS, D), torch.randn(2, HEADS)
    args = tuple(t.requires_grad_() for t in (q, k, v, log_f, log_i, C0, n0, m0))
    torch.library.opcheck(mlstm_parallel, args)


def test_shapes_heads_and_parameter_names():
    layer = MLSTM(I, 8, num_layers=2, num_heads=4, bidirectional=True, batch_first=True)
    out, (C, n, m) = layer(torch.randn(B, T, I))
    assert out.shape == (B, T, 16)
    assert C.shape == (4, B, 4 * 2 * 2) and n.shape == (4, B, 8) and m.shape == (4, B, 4)
    out, (C, n, m) = layer(torch.randn(T, I))  # unbatched
    assert out.shape == (T, 16) and C.shape == (4, 16) and m.shape == (4, 4)
    names = [n for n, _ in layer.named_parameters()]
    assert names == [
        "weight_ih_l0",
        "bias_ih_l0",
        "weight_ih_l0_reverse",
        "bias_ih_l0_reverse",
        "weight_ih_l1",
        "bias_ih_l1",
        "weight_ih_l1_reverse",
        "bias_ih_l1_reverse",
    ]
    assert layer.weight_ih_l1.shape == (4 * 8 + 2 * 4, 16)
    _, _, gates = layer(torch.randn(B, T, I), return_gates=True)
    assert sorted(gates[0]) == ["forget", "input", "output"]
    assert all(g.shape == (B, T, 8) for g in gates[0].values())
    out, state = layer(torch.randn(B, T, I))
    out2, _ = layer(torch.randn(B, T, I), state)  # the state passed back in
    assert out2.shape == (B, T, 16)


def test_state_carries_over_between_calls():
    layer = build(seed=10)
    x = torch.randn(T + 4, B, I, dtype=DT)
    whole, state = layer(x)
    first, mid = layer(x[:T])
    second, end = layer(x[T:], mid)
    torch.testing.assert_close(torch.cat([first, second]), whole)
    for a, b in zip(end, state, strict=True):
        torch.testing.assert_close(a, b)


def test_compile_fullgraph_equals_eager():
    torch._dynamo.reset()
    layer = MLSTM(I, H, num_layers=2, num_heads=HEADS, bidirectional=True)
    x = torch.randn(5, 2, I, requires_grad=True)
    lengths = torch.tensor([5, 3])

    def fn(x, lengths):
        out, (C, n, m) = layer(x, lengths=lengths)
        return out.square().sum() + C.sum() + n.sum() + m.sum()

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    got = [compiled(x, lengths)]
    got += torch.autograd.grad(got[0], [x, *layer.parameters()])
    expected = [fn(x, lengths)]
    expected += torch.autograd.grad(expected[0], [x, *layer.parameters()])
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)
    torch._dynamo.reset()


def test_cell_call_in_torch_form():
    cell = build(seed=11).cells[0]
    x = torch.randn(B, I, dtype=DT)
    C, n, m = cell(x)  # zeros to start; one step on the fast path
    with kernels.disabled():
        expected = cell(x)
    for a, b in zip((C, n, m), expected, strict=True):
        torch.testing.assert_close(a, b)
    assert type(lstmlab.make_layer("mlstm", 2, 3).cells[0]) is MLSTMCell


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: MLSTM(I, 6, num_heads=4), ValueError),
        (lambda: MLSTM(I, 4, num_heads=0), ValueError),
        (lambda: MLSTM(I, 4, num_heads=2.0), TypeError),
        (lambda: MLSTM(I, 4, zoneout=0.1), TypeError),
        (lambda: MLSTM(I, 4)(torch.randn(T, B, I + 1)), ShapeError),
        (lambda: MLSTM(I, 4)(torch.randn(T, B, I), torch.zeros(1, B, 16)), ShapeError),
        (lambda: MLSTM(I, 4)(torch.randn(T, B, I), (torch.zeros(1, B, 16),) * 2), ShapeError),
        (lambda: MLSTMCell(I, 4)(torch.randn(B, I), torch.zeros(B, 16)), TypeError),
        (lambda: MLSTM(I, 4)(torch.randn(T, B, I), lengths=[0, 1, 1]), ValueError),
    ],
)
def test_bad_input_raises_torchs_error_type(call, error):
    with pytest.raises(error):
        call()
