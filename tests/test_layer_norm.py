"""Layer-normalised LSTM and GRU (Ba, Kiros & Hinton 2016) against the paper's equations.

The reference steps below are typed from the paper (LN over the whole pre-activation vector, the
LSTM's cell state normalised before its output tanh) and call nothing of the library; the layers
must agree with them in float64, through ``layer_norm=True`` and through the cells.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.autograd import gradcheck
from torch.func import functional_call

import lstmlab
from lstmlab import GRU, LSTM, kernels
from lstmlab.nn import dispatch
from lstmlab.nn.cells.layer_norm import LayerNormGRUCell, LayerNormLSTMCell

DT = torch.float64
TOL = dict(atol=1e-10, rtol=0)
sigma, tanh = torch.sigmoid, torch.tanh


def LN(v: Tensor, gain: Tensor | float = 1.0, shift: Tensor | float = 0.0) -> Tensor:
    """Ba et al. 2016, eq. 4: standardise each row over its features, then gain and shift."""
    mu = v.mean(-1, keepdim=True)
    sigma2 = ((v - mu) ** 2).mean(-1, keepdim=True)
    return gain * (v - mu) / torch.sqrt(sigma2 + 1e-5) + shift


def ln_lstm_reference(p: dict[str, Tensor], x: Tensor, h: Tensor, c: Tensor):
    """The paper's LN-LSTM over x (T, B, I): (f,i,o,g) = LN(W_h h) + LN(W_x x) + b;
    c = σ(f) c + σ(i) tanh(g); h = σ(o) tanh(LN(c)); [h = W_hr h]. Rows of p: i, f, g, o."""
    b = p["bias_ih"] + p["bias_hh"] if "bias_ih" in p else 0.0
    outs = []
    for x_t in x:
        a = (
            LN(x_t @ p["weight_ih"].T, p["ln_ih.weight"])
            + LN(h @ p["weight_hh"].T, p["ln_hh.weight"])
            + b
        )
        i, f, g, o = a.chunk(4, -1)
        c = sigma(f) * c + sigma(i) * tanh(g)
        h = sigma(o) * tanh(LN(c, p["ln_c.weight"], p.get("ln_c.bias", 0.0)))
        if "weight_hr" in p:
            h = h @ p["weight_hr"].T
        outs.append(h)
    return torch.stack(outs), h, c


def ln_gru_reference(p: dict[str, Tensor], x: Tensor, h: Tensor):
    """LN on both pre-activation vectors of torch's GRU: r, z, n then h = (1-z) n + z h."""
    b_i, b_h = (p["bias_ih"], p["bias_hh"]) if "bias_ih" in p else (0.0, 0.0)
    outs = []
    for x_t in x:
        xr, xz, xn = (LN(x_t @ p["weight_ih"].T, p["ln_ih.weight"]) + b_i).chunk(3, -1)
        hr, hz, hn = (LN(h @ p["weight_hh"].T, p["ln_hh.weight"]) + b_h).chunk(3, -1)
        r, z = sigma(xr + hr), sigma(xz + hz)
        n = tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        outs.append(h)
    return torch.stack(outs), h


def cell_params(layer, suffix: str = "_l0") -> dict[str, Tensor]:
    """One cell's parameters under the cell's own names (``ln_ih.weight``), from the layer's."""
    cell = layer.cells[0]
    return {
        name: dict(layer.named_parameters())[name.replace(".", "_") + suffix]
        for name, _ in cell.named_parameters()
    }


def scramble(module: torch.nn.Module, seed: int = 0) -> None:
    """Random values everywhere (gains far from 1, shifts far from 0): nothing hides."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.mark.parametrize("kw", [{}, {"bias": False}, {"proj_size": 2}])
def test_lstm_layer_matches_paper(kw):
    torch.manual_seed(0)
    layer = LSTM(3, 4, layer_norm=True, dtype=DT, **kw)
    scramble(layer)
    x = torch.randn(6, 2, 3, dtype=DT)
    P = kw.get("proj_size") or 4
    h0, c0 = torch.randn(1, 2, P, dtype=DT), torch.randn(1, 2, 4, dtype=DT)
    out, (h_n, c_n) = layer(x, (h0, c0))
    ref_out, ref_h, ref_c = ln_lstm_reference(cell_params(layer), x, h0[0], c0[0])
    torch.testing.assert_close(out, ref_out, **TOL)
    torch.testing.assert_close(h_n[0], ref_h, **TOL)
    torch.testing.assert_close(c_n[0], ref_c, **TOL)


@pytest.mark.parametrize("kw", [{}, {"bias": False}])
def test_gru_layer_matches_paper(kw):
    torch.manual_seed(1)
    layer = GRU(3, 4, layer_norm=True, dtype=DT, **kw)
    scramble(layer, 1)
    x, h0 = torch.randn(6, 2, 3, dtype=DT), torch.randn(1, 2, 4, dtype=DT)
    out, h_n = layer(x, h0)
    ref_out, ref_h = ln_gru_reference(cell_params(layer), x, h0[0])
    torch.testing.assert_close(out, ref_out, **TOL)
    torch.testing.assert_close(h_n[0], ref_h, **TOL)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_two_layer_bidirectional_is_a_loop_of_the_cells(cls):
    torch.manual_seed(2)
    layer = cls(3, 4, num_layers=2, bidirectional=True, layer_norm=True, dtype=DT)
    scramble(layer, 2)
    x = torch.randn(5, 2, 3, dtype=DT)
    out, _ = layer(x)
    inputs = x
    for k in range(2):
        directions = []
        for d, cell in enumerate(layer.cells[2 * k : 2 * k + 2]):
            state, hs = cell.initial_state(2), []
            for t in range(5) if d == 0 else reversed(range(5)):
                state = cell(inputs[t], state)  # torch-style cell call
                hs.append(state[0] if isinstance(state, tuple) else state)
            directions.append(torch.stack(hs if d == 0 else hs[::-1]))
        inputs = torch.cat(directions, -1)
    torch.testing.assert_close(out, inputs, **TOL)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_input_and_recurrent_norms_cancel_weight_scale(cls):
    """LN makes each pre-activation invariant to the scale of its weight matrix (Ba et al. 2016,
    table 1): multiplying W_ih and W_hh by 7 changes nothing but the weight of the 1e-5 in
    sqrt(var + 1e-5). Without either LN the outputs would move by tenths."""
    torch.manual_seed(3)
    layer = cls(3, 4, layer_norm=True, dtype=DT)
    x = torch.randn(5, 2, 3, dtype=DT)
    before = layer(x)[0]
    with torch.no_grad():
        layer.weight_ih_l0.mul_(7.0)
        layer.weight_hh_l0.mul_(7.0)
    torch.testing.assert_close(layer(x)[0], before, atol=1e-3, rtol=0)


def test_cell_state_norm_is_applied():
    """Scaling ln_c's gain changes h (it sits inside the output tanh): the third LN exists."""
    torch.manual_seed(4)
    layer = LSTM(3, 4, layer_norm=True, dtype=DT)
    x = torch.randn(5, 2, 3, dtype=DT)
    before = layer(x)[0]
    with torch.no_grad():
        layer.ln_c_weight_l0.mul_(3.0)
    assert (layer(x)[0] - before).abs().max() > 1e-3


@pytest.mark.parametrize(
    "cls,kw",
    [
        (LSTM, {"bidirectional": True}),
        (GRU, {"bidirectional": True}),
        (LSTM, {"num_layers": 2, "proj_size": 1}),
    ],
)
def test_gradcheck(cls, kw):
    torch.manual_seed(5)
    layer = cls(2, 2, layer_norm=True, dtype=DT, **kw)
    scramble(layer, 5)
    x = torch.randn(3, 2, 2, dtype=DT, requires_grad=True)
    params = dict(layer.named_parameters())

    def f(x, *weights):
        out, _ = functional_call(
            layer, dict(zip(params, weights)), (x,), {"lengths": torch.tensor([3, 2])}
        )
        return out

    assert gradcheck(f, (x, *params.values()))


def test_state_dict_names_and_shapes():
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2, layer_norm=True)
    shapes = {k: tuple(v.shape) for k, v in lstm.state_dict().items()}
    assert shapes["weight_ih_l0"] == (16, 3) and shapes["weight_hh_l0"] == (16, 2)
    assert shapes["weight_ih_l1_reverse"] == (16, 4) and shapes["weight_hr_l1"] == (2, 4)
    assert shapes["ln_ih_weight_l0"] == shapes["ln_hh_weight_l1_reverse"] == (16,)
    assert shapes["ln_c_weight_l1"] == shapes["ln_c_bias_l0_reverse"] == (4,)
    per_direction = [
        "weight_ih",
        "weight_hh",
        "bias_ih",
        "bias_hh",
        "weight_hr",
        "ln_ih_weight",
        "ln_hh_weight",
        "ln_c_weight",
        "ln_c_bias",
    ]
    assert set(shapes) == {
        f"{n}_l{k}{d}" for n in per_direction for k in (0, 1) for d in ("", "_reverse")
    }
    gru = GRU(3, 4, layer_norm=True, bias=False)
    assert set(gru.state_dict()) == {
        "weight_ih_l0",
        "weight_hh_l0",
        "ln_ih_weight_l0",
        "ln_hh_weight_l0",
    }
    assert torch.equal(gru.ln_ih_weight_l0.detach(), torch.ones(12))  # gains start at 1
    assert torch.equal(lstm.ln_c_bias_l0.detach(), torch.zeros(4))  # shifts at 0


def test_state_dict_round_trip():
    a, b = LSTM(3, 4, layer_norm=True), LSTM(3, 4, layer_norm=True)
    scramble(a)
    b.load_state_dict(a.state_dict())
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(a(x)[0], b(x)[0], atol=0, rtol=0)


def test_no_torch_kernel_and_only_its_own_fused_op(monkeypatch):
    """torch's LSTM kernel has no layer norm: an LN layer must never reach _VF.lstm, nor the
    plain LSTM/GRU kernels; LN cells have fused ops of their own (fused/layer_norm.py, held to
    the readable loop in test_fused.py)."""
    from lstmlab.kernels.layer_norm import ln_gru_sequence, ln_lstm_sequence

    lstm = LSTM(3, 4, layer_norm=True)
    assert not lstm._torch_kernel and lstm._whole_stack(torch.randn(2, 1, 3), (), None) is None
    x = torch.randn(5, 2, 3)

    def wraps(op, target) -> bool:
        """Registered decorated (kernels._common.fused_sequence_op): target is in the chain."""
        while op is not None and op is not target:
            op = getattr(op, "__wrapped__", None)
        return op is target

    assert wraps(kernels.sequence_op(lstm.cells[0], x), ln_lstm_sequence)
    assert wraps(kernels.sequence_op(GRU(3, 4, layer_norm=True).cells[0], x), ln_gru_sequence)

    def refuse(*args, **kwargs):
        raise AssertionError("a kernel was called for a layer-normalised cell")

    monkeypatch.setattr(lstmlab.nn.layers.standard._VF, "lstm", refuse)
    for cell_type, (op, accepts) in list(dispatch._SEQUENCE_OPS.items()):
        if not (wraps(op, ln_lstm_sequence) or wraps(op, ln_gru_sequence)):
            monkeypatch.setitem(dispatch._SEQUENCE_OPS, cell_type, (refuse, accepts))
    for layer in (lstm, GRU(3, 4, 2, bidirectional=True, layer_norm=True)):
        out, _ = layer(x)
        with kernels.disabled():
            torch.testing.assert_close(out, layer(x)[0], atol=1e-6, rtol=0)
    with pytest.raises(AssertionError, match="kernel"):  # the trap itself works
        LSTM(3, 4)(x)


@pytest.mark.parametrize(
    "kw",
    [
        {"peephole": True},
        {"coupled": True},
        {"input_gate": False},
        {"output_activation": False},
        {"gate_recurrence": True},
    ],
)
def test_lstm_variant_switches_are_refused(kw):
    name = next(iter(kw))
    with pytest.raises(ValueError, match=name):
        LSTM(3, 4, layer_norm=True, **kw)


def test_gru_reset_before_is_refused():
    with pytest.raises(ValueError, match="reset_after"):
        GRU(3, 4, layer_norm=True, reset_after=False)


def test_cells_work_alone():
    cell = LayerNormLSTMCell(3, 4)
    h, c = cell(torch.randn(2, 3))  # as torch.nn.LSTMCell
    assert h.shape == c.shape == (2, 4)
    h = LayerNormGRUCell(3, 4)(torch.randn(3))  # unbatched, as torch
    assert h.shape == (4,)
    with pytest.raises(ValueError, match="proj_size"):
        LayerNormLSTMCell(3, 4, proj_size=4)


def test_fused_lstm_keeps_one_gate_sized_tensor_for_backward():
    """The fused LN-LSTM keeps for its backward the gate activations (T, B, 4H) and nothing
    else that wide: W_ih x and the recurrent half's W_hh h are rebuilt from x and hs, which
    is what holds a training step's peak near torch.nn.LSTM's."""
    T, B, I, H = 7, 3, 5, 4
    layer = LSTM(I, H, layer_norm=True)
    x = torch.randn(T, B, I, requires_grad=True)
    wide: list[tuple[int, ...]] = []

    def pack(t: Tensor) -> Tensor:
        if t.numel() >= T * B * 4 * H:
            wide.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out, _ = layer(x)
    assert wide == [(T, B, 4 * H)]
    out.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in layer.parameters())
