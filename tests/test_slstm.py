"""The sLSTM (Beck et al. 2024, section 2.2): the cell against the paper's equations written out
here -- unstabilised, so the stabiliser is checked rather than copied --, the fused operator
against the readable loop (outputs, final states, every gradient), gradcheck of both, finiteness
for huge inputs, and the errors for bad arguments."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import Tensor
from torch.autograd import gradcheck
from torch.func import functional_call

import lstmlab
from lstmlab import SLSTM, SLSTMCell, kernels
from lstmlab.nn import DtypeError, ShapeError

DT = torch.float64
I, H, B, T = 3, 4, 2, 5


# --------------------------------------------------------------------------------------------
# The paper's equations, one weight matrix per gate, cut out of the documented layout.


def block_diagonal(weight_hh: Tensor) -> Tensor:
    """R (4H, H) from weight_hh (K, 4d, d): rows g*H + k*d + a, columns k*d + b."""
    K, four_d, d = weight_hh.shape
    R = weight_hh.new_zeros(4 * K * d, K * d)
    for k in range(K):
        for g in range(4):
            rows = slice(g * K * d + k * d, g * K * d + (k + 1) * d)
            R[rows, k * d : (k + 1) * d] = weight_hh[k, g * d : (g + 1) * d]
    return R


def paper_run(cell: SLSTMCell, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Beck et al. 2024, eqs. of section 2.2 without the stabiliser: i = exp(ĩ), f = σ(f̃) (or
    exp(f̃)), c = f c + i z, n = f n + i, h = o c / n, from c = n = 0. Returns h (T, B, H) and the
    final c and n, unscaled."""
    R = block_diagonal(cell.weight_hh)
    W = cell.weight_ih
    b = cell.bias_ih + cell.bias_hh if cell.bias_ih is not None else W.new_zeros(4 * H)
    gate = dict(zip("ifzo", range(4)))

    def pre(g: str, x_t: Tensor, h: Tensor) -> Tensor:
        rows = slice(gate[g] * cell.hidden_size, (gate[g] + 1) * cell.hidden_size)
        return x_t @ W[rows].T + h @ R[rows].T + b[rows]

    batch, size = x.shape[1], cell.hidden_size
    h = c = n = x.new_zeros(batch, size)
    hs = []
    for x_t in x:
        i = torch.exp(pre("i", x_t, h))
        f_pre = pre("f", x_t, h)
        f = torch.exp(f_pre) if cell.exponential_forget else torch.sigmoid(f_pre)
        z = torch.tanh(pre("z", x_t, h))
        o = torch.sigmoid(pre("o", x_t, h))
        c = f * c + i * z
        n = f * n + i
        h = o * c / n
        hs.append(h)
    return torch.stack(hs), c, n


def official_step(cell: SLSTMCell, x_t: Tensor, state):
    """The xlstm package's pointwise step as its kernels write it: gates min(1, ·), and a unit
    with n = 0 takes m_t = ĩ."""
    h, c, n, m = state
    raw = x_t @ cell.weight_ih.T + h @ block_diagonal(cell.weight_hh).T
    if cell.bias_ih is not None:
        raw = raw + cell.bias_ih + cell.bias_hh
    i_raw, f_raw, z_raw, o_raw = raw.chunk(4, -1)
    log_f_plus_m = m + (f_raw if cell.exponential_forget else torch.nn.functional.logsigmoid(f_raw))
    m_new = torch.where(n == 0, i_raw, torch.maximum(i_raw, log_f_plus_m))
    i = torch.minimum(torch.exp(i_raw - m_new), torch.ones_like(i_raw))
    f = torch.minimum(torch.exp(log_f_plus_m - m_new), torch.ones_like(i_raw))
    c = f * c + i * torch.tanh(z_raw)
    n = f * n + i
    h = torch.sigmoid(o_raw) * c / n
    return h, (h, c, n, m_new)


@pytest.mark.parametrize("exponential_forget", [False, True])
@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_cell_and_layer_follow_the_papers_equations(num_heads, exponential_forget):
    torch.manual_seed(0)
    layer = SLSTM(I, H, num_heads=num_heads, exponential_forget=exponential_forget).double()
    cell = layer.cells[0]
    x = torch.randn(T, B, I, dtype=DT)
    expected_h, c_paper, n_paper = paper_run(cell, x)
    for path in (contextlib.nullcontext, kernels.disabled):  # fused, then readable
        with path():
            out, (h_n, c_n, n_n, m_n) = layer(x)
        torch.testing.assert_close(out, expected_h, atol=1e-10, rtol=0)
        torch.testing.assert_close(h_n[0], expected_h[-1], atol=1e-10, rtol=0)
        # the stored c and n are the paper's, scaled by exp(-m)
        torch.testing.assert_close(c_n[0] * m_n[0].exp(), c_paper, atol=1e-10, rtol=1e-10)
        torch.testing.assert_close(n_n[0] * m_n[0].exp(), n_paper, atol=1e-10, rtol=1e-10)


def test_steps_match_the_official_pointwise_step_and_its_stabiliser():
    torch.manual_seed(1)
    cell = SLSTMCell(I, 6, num_heads=3).double()
    x = 4 * torch.randn(T, B, I, dtype=DT)
    ours = theirs = cell.initial_state(B)
    for x_t in x:
        h, ours, gates = cell.step(x_t, ours)
        h_ref, theirs = official_step(cell, x_t, theirs)
        torch.testing.assert_close(h, h_ref, atol=1e-12, rtol=0)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
        assert set(gates) == {"input", "forget", "candidate", "output"}
        assert bool((gates["input"] <= 1).all() and (gates["forget"] <= 1).all())
        # one of the stabilised gates is exactly 1: m_t is the larger of its two candidates
        assert bool(((gates["input"] == 1) | (gates["forget"] == 1)).all())


def test_shapes_batched_unbatched_batch_first_bidirectional_and_gates():
    torch.manual_seed(0)
    layer = SLSTM(I, 6, num_layers=2, bidirectional=True, batch_first=True, num_heads=3)
    out, state = layer(torch.randn(B, T, I))
    assert out.shape == (B, T, 12) and len(state) == 4
    assert all(s.shape == (4, B, 6) for s in state)
    out, state, gates = layer(torch.randn(T, I), return_gates=True)  # unbatched
    assert out.shape == (T, 12) and all(s.shape == (4, 6) for s in state)
    assert len(gates) == 4 and gates[0]["forget"].shape == (T, 6)
    assert [tuple(p.shape) for p in layer.cells[0].parameters()] == [
        (24, I),
        (3, 8, 2),
        (24,),
        (24,),
    ]
    assert layer.weight_hh_l1_reverse.shape == (3, 8, 2)
    cell = SLSTMCell(I, 6)
    h, c, n, m = cell(torch.randn(I))  # torch-style call: unbatched, zero state
    assert h.shape == c.shape == n.shape == m.shape == (6,)
    assert float(n.detach().min()) == 1.0  # the first step from zeros: n = i' = 1 (m = ĩ)


def test_padded_steps_and_reverse_follow_the_unpadded_sequences():
    torch.manual_seed(2)
    layer = SLSTM(I, H, bidirectional=True, num_heads=2).double()
    x, lengths = torch.randn(T, 3, I, dtype=DT), [5, 2, 4]
    out, state = layer(x, lengths=lengths)
    for b, n in enumerate(lengths):
        alone, alone_state = layer(x[:n, b : b + 1])
        torch.testing.assert_close(out[:n, b : b + 1], alone, atol=1e-12, rtol=0)
        assert bool((out[n:, b] == 0).all())
        for s, a in zip(state, alone_state):
            torch.testing.assert_close(s[:, b : b + 1], a, atol=1e-12, rtol=0)


# --------------------------------------------------------------------------------------------
# The fused operator against the readable loop.


def outputs_and_grads(layer, x, hx, lengths):
    out, state = layer(x, hx, lengths=lengths)
    g = torch.Generator().manual_seed(5)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in [out, *state])
    leaves = [x, *(hx or ()), *layer.parameters()]
    return [out, *state, *torch.autograd.grad(loss, leaves)]


def random_state(layer, batch, dtype):
    """A state met after some steps: any h, c, m, and n >= 1."""
    count = layer.num_layers * layer.num_directions
    h, c, m = (torch.randn(count, batch, layer.hidden_size, dtype=dtype) for _ in range(3))
    n = 1 + torch.rand(count, batch, layer.hidden_size, dtype=dtype)
    return tuple(p.requires_grad_() for p in (h, c, n, m))


CASES = {
    "one-head": dict(),
    "heads-lengths": dict(num_heads=2, lengths=[5, 3, 1]),
    "bidirectional-stacked": dict(num_layers=2, bidirectional=True, num_heads=4, lengths=[4, 5, 2]),
    "exponential-forget": dict(exponential_forget=True, bidirectional=True, state=True),
    "no-bias-state-lengths": dict(bias=False, num_heads=2, state=True, lengths=[2, 5, 5]),
}


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 3e-5)])
@pytest.mark.parametrize("case", list(CASES))
def test_fused_equals_readable_loop_with_all_gradients(case, dtype, atol):
    kw = dict(CASES[case])
    lengths, with_state = kw.pop("lengths", None), kw.pop("state", False)
    torch.manual_seed(3)
    layer = SLSTM(I, H, **kw).to(dtype)
    x = torch.randn(T, 3, I, dtype=dtype, requires_grad=True)
    hx = random_state(layer, 3, dtype) if with_state else None
    assert kernels.sequence_op(layer.cells[0], x) is not None  # the fused path is taken
    fast = outputs_and_grads(layer, x, hx, lengths)
    with kernels.disabled():
        slow = outputs_and_grads(layer, x, hx, lengths)
    for k, (a, b) in enumerate(zip(fast, slow, strict=True)):
        torch.testing.assert_close(a, b, atol=atol, rtol=1e-6, msg=lambda m: f"result {k}: {m}")


def test_fused_path_is_the_operator_and_the_readable_loop_is_not():
    layer = SLSTM(I, H)
    x = torch.randn(T, B, I)
    calls = []

    class Recorder(torch.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            calls.append(func.name())
            return func(*args, **(kwargs or {}))

    with Recorder():
        layer(x)[0].sum().backward()
    assert "lstmlab::slstm_forward" in calls and "lstmlab::slstm_backward" in calls
    calls.clear()
    with Recorder(), kernels.disabled():
        layer(x)
    assert not any(c.startswith("lstmlab::") for c in calls)


@pytest.mark.parametrize("exponential_forget", [False, True])
def test_gradcheck_readable_cell_and_fused_layer(exponential_forget):
    torch.manual_seed(0)
    layer = SLSTM(2, 4, bidirectional=True, num_heads=2, exponential_forget=exponential_forget)
    layer = layer.double()
    x = torch.randn(4, 2, 2, dtype=DT, requires_grad=True)
    hx = random_state(layer, 2, DT)
    params = dict(layer.named_parameters())

    def f(x, *tensors):
        state, weights = tensors[:4], tensors[4:]
        out, final = functional_call(
            layer, dict(zip(params, weights)), (x, state), {"lengths": torch.tensor([4, 2])}
        )
        return out, *final

    inputs = (x, *hx, *params.values())
    assert gradcheck(f, inputs)
    with kernels.disabled():
        assert gradcheck(f, inputs)
    zero_state = (x, *(torch.zeros_like(p).detach() for p in hx), *params.values())
    assert gradcheck(f, zero_state)  # the first step from zeros (m = ĩ)


def test_gradcheck_of_the_operator_itself():
    torch.manual_seed(1)
    K, d, batch = 2, 2, 3
    x = torch.randn(T, batch, I, dtype=DT, requires_grad=True)
    w_ih = torch.randn(4 * K * d, I, dtype=DT, requires_grad=True)
    bias = torch.randn(4 * K * d, dtype=DT, requires_grad=True)
    w_hh = torch.randn(K, 4 * d, d, dtype=DT, requires_grad=True)
    h0, c0, m0 = (torch.randn(batch, K * d, dtype=DT, requires_grad=True) for _ in range(3))
    n0 = (1 + torch.rand(batch, K * d, dtype=DT)).requires_grad_()
    lengths = torch.tensor([5, 2, 4])

    def op(*args):
        hs, cs, ns, ms, _ = torch.ops.lstmlab.slstm_forward(*args, lengths, False)
        return hs, cs[-1], ns[-1], ms[-1]

    assert gradcheck(op, (x, w_ih, bias, w_hh, h0, c0, n0, m0))


# --------------------------------------------------------------------------------------------
# Huge inputs, regularisers, errors.


@pytest.mark.parametrize("exponential_forget", [False, True])
def test_outputs_and_gradients_finite_for_inputs_of_magnitude_1e3(exponential_forget):
    torch.manual_seed(4)
    layer = SLSTM(I, H, num_layers=2, num_heads=2, exponential_forget=exponential_forget)
    x = (1e3 * torch.randn(T, B, I)).requires_grad_()
    x.data[0, 0] = torch.tensor([-1e3, 1e3, -1e3])
    for path in (torch.enable_grad, kernels.disabled):
        with path():
            out, state = layer(x)
            grads = torch.autograd.grad(out.sum() + state[0].sum(), [x, *layer.parameters()])
        assert all(bool(t.isfinite().all()) for t in (out, *state, *grads))
        assert bool((out.abs() <= 1).all())  # |h| = σ(õ) |c / n| <= 1: n >= Σ weights of c


def test_regularisers_run_the_readable_loop_with_the_same_masks():
    torch.manual_seed(0)
    layer = SLSTM(I, H, zoneout=0.3, recurrent_dropout=0.2, bidirectional=True).train()
    x = torch.randn(T, B, I)
    torch.manual_seed(9)
    got = layer(x)[0]
    torch.manual_seed(9)
    with kernels.disabled():
        expected = layer(x)[0]
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
    assert SLSTMCell.zoned_state_parts == 1  # c and n share exp(m): only h is zoned


def test_registry_builds_it_by_name():
    layer = lstmlab.make_layer("slstm", I, 8, num_heads=2)
    assert isinstance(layer, SLSTM) and layer.num_heads == 2 and "slstm" in lstmlab.VARIANTS


@pytest.mark.parametrize(
    "build, error, words",
    [
        (lambda: SLSTM(I, 6, num_heads=4), ValueError, "num_heads=4"),
        (lambda: SLSTM(I, 6, num_heads=0), ValueError, "num_heads must be"),
        (lambda: SLSTM(I, 6, num_heads=2.0), TypeError, "num_heads must be"),
        (lambda: SLSTMCell(I, 6, exponential_forget=1), TypeError, "exponential_forget"),
        (lambda: SLSTM(I, 6, bias=1), TypeError, "bias must be"),
        (lambda: SLSTM(I, 0), ValueError, "hidden_size"),
    ],
)
def test_bad_arguments_raise_clear_errors(build, error, words):
    with pytest.raises(error, match=words):
        build()


def test_bad_input_raises_the_library_error_types():
    layer = SLSTM(I, H)
    x = torch.randn(T, B, I)
    with pytest.raises(ShapeError, match="input_size=3"):
        layer(torch.randn(T, B, I + 1))
    with pytest.raises(ShapeError, match="4 part"):
        layer(x, (torch.zeros(1, B, H), torch.zeros(1, B, H)))  # an LSTM's (h, c)
    with pytest.raises(DtypeError, match="float64"):
        layer(x.double())
    with pytest.raises(ShapeError, match="shape"):
        layer(x, tuple(torch.zeros(1, B + 1, H) for _ in range(4)))
