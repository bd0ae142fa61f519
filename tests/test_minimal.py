"""minGRU and minLSTM (Feng et al. 2024) against their paper, written out here, and the blocked
linear scan against the readable step loop: outputs, final states and every gradient, with
lengths, both directions, long sequences and float32; then gradcheck, the operator, compile,
and bad input."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.autograd import gradcheck
from torch.func import functional_call

import lstmlab
from lstmlab import MinGRU, MinGRUCell, MinLSTM, MinLSTMCell, kernels
from lstmlab.kernels.scan import linear_scan
from lstmlab.nn import DtypeError, ShapeError
from lstmlab.nn.cells.minimal import g

DT = torch.float64
I, H, B, T = 3, 4, 3, 7
LAYERS = {"mingru": MinGRU, "minlstm": MinLSTM}


def paper_step(name: str, w: Tensor, bias: Tensor, x: Tensor, h: Tensor, positive: bool):
    """Feng et al. 2024, sections 3.1 and 3.2: one step from the rows of ``weight_ih``."""
    z = x @ w.T + bias
    if name == "mingru":  # rows z, h̃
        gate, cand = z[..., :H].sigmoid(), z[..., H:]
        cand = g(cand) if positive else cand
        return (1 - gate) * h + gate * cand
    f, i, cand = z[..., :H].sigmoid(), z[..., H : 2 * H].sigmoid(), z[..., 2 * H :]
    cand = g(cand) if positive else cand
    return f / (f + i) * h + i / (f + i) * cand


def build(name: str, seed: int = 0, **kwargs) -> lstmlab.Stack:
    torch.manual_seed(seed)
    layer = LAYERS[name](I, H, dtype=DT, **kwargs)
    with torch.no_grad():  # larger than torch's init, so every term moves the result
        for p in layer.parameters():
            p.normal_(0, 0.8)
    return layer


def loss_and_grads(layer, x, hx, lengths):
    out, h_n = layer(x, hx, lengths=lengths)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    loss = (out * weights).sum() + (h_n * h_n.flip(-1)).sum()
    leaves = [x, *([] if hx is None else [hx]), *layer.parameters()]
    return [out, h_n, *torch.autograd.grad(loss, leaves)]


def check_against_loop(layer, x, hx, lengths, **tol):
    fast = loss_and_grads(layer, x, hx, lengths)
    with kernels.disabled():
        slow = loss_and_grads(layer, x, hx, lengths)
    for k, (a, b) in enumerate(zip(fast, slow, strict=True)):
        torch.testing.assert_close(a, b, **tol, msg=lambda m: f"result {k}: {m}")


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_is_the_papers_recurrence(name, positive):
    layer = build(name, positive=positive)
    x = torch.randn(T, B, I, dtype=DT)
    h = torch.randn(B, H, dtype=DT)
    out, h_n = layer(x, h.unsqueeze(0))
    expected = []
    for t in range(T):
        h = paper_step(name, layer.weight_ih_l0, layer.bias_ih_l0, x[t], h, positive)
        expected.append(h)
    torch.testing.assert_close(out, torch.stack(expected), atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(h_n[0], h, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name", list(LAYERS))
def test_cell_step_and_gates_are_the_papers(name):
    layer = build(name, seed=1)
    cell = layer.cells[0]
    x, h = torch.randn(B, I, dtype=DT), torch.randn(B, H, dtype=DT)
    new, (state,), gates = cell.step(x, (h,))
    torch.testing.assert_close(new, paper_step(name, cell.weight_ih, cell.bias_ih, x, h, False))
    assert state is new
    if name == "mingru":
        assert sorted(gates) == ["candidate", "update"]
        torch.testing.assert_close(
            new, (1 - gates["update"]) * h + gates["update"] * gates["candidate"]
        )
    else:
        assert sorted(gates) == ["candidate", "forget", "input"]
        torch.testing.assert_close(gates["forget"] + gates["input"], torch.ones(B, H, dtype=DT))
    torch.testing.assert_close(cell(x, h), new)  # torch's calling convention, fast path
    with kernels.disabled():
        torch.testing.assert_close(cell(x, h), new)


@pytest.mark.parametrize("lengths", [[T, 2, 5], [1, T, 4], None])
@pytest.mark.parametrize("name", list(LAYERS))
def test_scan_equals_step_loop_with_lengths_and_directions(name, lengths):
    layer = build(name, seed=2, num_layers=2, bidirectional=True)
    x = torch.randn(T, B, I, dtype=DT, requires_grad=True)
    hx = torch.randn(4, B, H, dtype=DT, requires_grad=True)
    lengths = None if lengths is None else torch.tensor(lengths)
    check_against_loop(layer, x, hx, lengths, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name", list(LAYERS))
def test_padding_never_reaches_the_state(name):
    """Steps past a length leave the state as it was, whatever they hold (even inf)."""
    layer = build(name, seed=3, bidirectional=True)
    x = torch.randn(T, 2, I, dtype=DT)
    lengths = torch.tensor([T, 3])
    out, h_n = layer(x, lengths=lengths)
    x[3:, 1] = torch.inf
    out2, h_n2 = layer(x, lengths=lengths)
    torch.testing.assert_close(out, out2)
    torch.testing.assert_close(h_n, h_n2)
    assert bool((out[3:, 1] == 0).all())
    alone, h_alone = layer(x[:3, 1:])
    torch.testing.assert_close(out[:3, 1:], alone)
    torch.testing.assert_close(h_n[:, 1:], h_alone)


@pytest.mark.parametrize("name", list(LAYERS))
def test_long_sequences_agree_in_float32_and_float64(name):
    """T = 1024: the scan's error against a float64 step loop is the float32 step loop's."""
    torch.manual_seed(4)
    layer = LAYERS[name](5, 8, dtype=DT)
    x = torch.randn(1024, 2, 5, dtype=DT)
    with torch.no_grad():
        fast64, _ = layer(x)
        with kernels.disabled():
            truth, _ = layer(x)
            loop32, _ = layer.float()(x.float())
        fast32, _ = layer(x.float())
    torch.testing.assert_close(fast64, truth, atol=1e-12, rtol=1e-10)
    loop_error = float((loop32.double() - truth).abs().max())
    scan_error = float((fast32.double() - truth).abs().max())
    assert scan_error <= 4 * loop_error + 1e-6, (scan_error, loop_error)
    torch.testing.assert_close(fast32, loop32, atol=1e-5, rtol=1e-4)


def test_linear_scan_is_the_recurrence_for_any_sign():
    torch.manual_seed(5)
    for steps in (1, 2, 5, 16, 17, 100):
        a, b, h0 = (
            torch.rand(steps, 3, 2, dtype=DT),
            torch.randn(steps, 3, 2, dtype=DT),
            torch.randn(3, 2, dtype=DT),
        )
        h, expected = h0, []
        for t in range(steps):
            h = a[t] * h + b[t]
            expected.append(h)
        torch.testing.assert_close(linear_scan(a, b, h0), torch.stack(expected))


def test_linear_scan_gradients_first_and_second():
    torch.manual_seed(6)
    a = torch.rand(9, 2, 3, dtype=DT, requires_grad=True)
    b = torch.randn(9, 2, 3, dtype=DT, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=DT, requires_grad=True)
    assert gradcheck(linear_scan, (a, b, h0))
    assert torch.autograd.gradgradcheck(linear_scan, (a, b, h0))


def test_linear_scan_opcheck():
    a, b, h0 = torch.rand(6, 2, 3), torch.randn(6, 2, 3), torch.randn(2, 3)
    torch.library.opcheck(
        linear_scan, (a.requires_grad_(), b.requires_grad_(), h0.requires_grad_())
    )


@pytest.mark.parametrize("name", list(LAYERS))
def test_gradcheck_readable_cell_and_fast_path(name):
    layer = build(name, seed=7, bidirectional=True)
    x = torch.randn(4, 2, I, dtype=DT, requires_grad=True)
    params = dict(layer.named_parameters())

    def f(x, *weights):
        out, h_n = functional_call(
            layer, dict(zip(params, weights)), (x,), {"lengths": torch.tensor([4, 2])}
        )
        return out, h_n

    assert gradcheck(f, (x, *params.values()))
    with kernels.disabled():
        assert gradcheck(f, (x, *params.values()))


@pytest.mark.parametrize("name", list(LAYERS))
def test_shapes_batch_first_unbatched_and_stacked(name):
    cls = LAYERS[name]
    layer = cls(I, H, num_layers=3, bidirectional=True, batch_first=True)
    out, h_n = layer(torch.randn(B, T, I))
    assert out.shape == (B, T, 2 * H) and h_n.shape == (6, B, H)
    out, h_n = layer(torch.randn(T, I))  # unbatched
    assert out.shape == (T, 2 * H) and h_n.shape == (6, H)
    names = [n for n, _ in cls(I, H, num_layers=2, bidirectional=True).named_parameters()]
    assert names[:2] == ["weight_ih_l0", "bias_ih_l0"] and "weight_ih_l1_reverse" in names
    assert not any("bias" in n for n, _ in cls(I, H, bias=False).named_parameters())
    _, _, gates = layer(torch.randn(B, T, I), return_gates=True)
    assert len(gates) == 6 and all(v.shape == (B, T, H) for v in gates[0].values())


@pytest.mark.parametrize("name", list(LAYERS))
def test_zoneout_runs_the_readable_loop_with_the_same_masks(name):
    layer = build(name, seed=8, zoneout=0.3).train()
    x = torch.randn(T, B, I, dtype=DT)
    torch.manual_seed(9)
    out, _ = layer(x)
    torch.manual_seed(9)
    with kernels.disabled():
        expected, _ = layer(x)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("name", list(LAYERS))
def test_compile_fullgraph_equals_eager(name):
    torch._dynamo.reset()
    layer = LAYERS[name](I, H, num_layers=2, bidirectional=True)
    x = torch.randn(5, 2, I, requires_grad=True)
    lengths = torch.tensor([5, 3])

    def fn(x, lengths):
        out, h_n = layer(x, lengths=lengths)
        return out.square().sum() + h_n.sum()

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    got = [compiled(x, lengths)]
    got += torch.autograd.grad(got[0], [x, *layer.parameters()])
    expected = [fn(x, lengths)]
    expected += torch.autograd.grad(expected[0], [x, *layer.parameters()])
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)
    torch._dynamo.reset()


@pytest.mark.parametrize("name", list(LAYERS))
def test_bfloat16_runs_the_scan_in_float32(name):
    torch.manual_seed(10)
    layer = LAYERS[name](I, H)
    x = torch.randn(T, B, I)
    expected, _ = layer(x)
    out, h_n = layer.bfloat16()(x.bfloat16())
    assert out.dtype == h_n.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, atol=3e-2, rtol=3e-2)


def test_cell_classes_are_named_in_the_registry():
    for name, cell in (("mingru", MinGRUCell), ("minlstm", MinLSTMCell)):
        assert type(lstmlab.make_layer(name, 2, 3).cells[0]) is cell


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: MinGRU(I, H)(torch.randn(T, B, I + 1)), ShapeError),
        (lambda: MinLSTM(I, H)(torch.randn(T, B, I, dtype=DT)), DtypeError),
        (lambda: MinGRU(I, H)(torch.randn(B, T, B, I)), ShapeError),
        (lambda: MinLSTM(I, H)(torch.randn(T, B, I), torch.zeros(2, B, H)), ShapeError),
        (lambda: MinGRU(I, H)(torch.randn(T, B, I), lengths=[T + 1, 1, 1]), ValueError),
        (lambda: MinGRUCell(I, H)(torch.randn(B, I + 1)), ShapeError),
        (lambda: MinGRU(I, 0), ValueError),
        (lambda: MinLSTM(I, 2.5), TypeError),
        (lambda: MinGRU(I, H, recurrent_dropout=0.1), TypeError),
    ],
)
def test_bad_input_raises_torchs_error_type(call, error):
    with pytest.raises(error):
        call()
