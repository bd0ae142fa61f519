"""The LSTM variants and both GRU forms against their papers' equations, written out here.

Each reference step below is typed from its paper with one weight matrix per gate (W_xi, W_hi,
b_i, ...), sliced out of the library's parameters by the documented row layout (weight_ih rows: the
computed pre-activations in the order i, f, g, o; GRU: r, z, n). None of them calls the library.
The layers (``lstmlab.LSTM`` / ``GRU``) and the cells must agree with them in float64, both
through their fast paths (the C++ kernels; torch's kernel for the plain LSTM) and through the
readable loop over ``step`` (``lstmlab.kernels.disabled()``). Then: neutral variant weights give
the plain LSTM, every valid switch combination passes ``gradcheck``, and the invalid ones raise a
``ValueError`` that names their arguments.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from contextlib import contextmanager
from typing import NamedTuple

import pytest
import torch
from torch import Tensor
from torch.autograd import gradcheck
from torch.func import functional_call

import lstmlab

DT = torch.float64
I, H, B, T = 3, 4, 2, 5  # input size, hidden size, batch, steps of the reference runs
TOL = dict(atol=1e-10, rtol=0)
sigma, tanh = torch.sigmoid, torch.tanh


def lin(W: Tensor, v: Tensor) -> Tensor:
    """W v for a batch of row vectors: W (out, in), v (B, in) -> (B, out)."""
    return v @ W.T


# --------------------------------------------------------------------------------------------
# The papers' weights: one matrix per gate, cut out of the library's parameters.


def paper_weights(p: dict[str, Tensor], order: str) -> dict[str, Tensor]:
    """Per-gate weights from one cell's parameters ``p`` (names without ``_l0`` suffixes).

    ``order`` lists the gates whose rows weight_ih / weight_hh / bias_* hold, e.g. ``"igo"`` for
    CIFG. Gives W_x{gate} (H, I), W_h{gate} (H, P), b_x{gate}, b_h{gate} and b_{gate} = b_x + b_h;
    the peepholes w_ci, w_cf, w_co (H,); the FGR matrices R_{to}{from} (H, H), the (to, from)
    block of weight_gg over the sigmoid gates in the order i, f, o; the projection W_proj (P, H).
    """
    assert p["weight_ih"].shape[0] == p["weight_hh"].shape[0] == len(order) * H, (
        f"expected {len(order)} row blocks ({order}) of {H} rows"
    )
    w = {}
    for k, gate in enumerate(order):
        rows = slice(k * H, (k + 1) * H)
        w[f"W_x{gate}"], w[f"W_h{gate}"] = p["weight_ih"][rows], p["weight_hh"][rows]
        if "bias_ih" in p:
            w[f"b_x{gate}"], w[f"b_h{gate}"] = p["bias_ih"][rows], p["bias_hh"][rows]
        else:  # bias=False
            w[f"b_x{gate}"] = w[f"b_h{gate}"] = torch.zeros(H, dtype=p["weight_ih"].dtype)
        w[f"b_{gate}"] = w[f"b_x{gate}"] + w[f"b_h{gate}"]
    for gate in "ifo":
        if f"weight_c{gate}" in p:
            w[f"w_c{gate}"] = p[f"weight_c{gate}"]
    if "weight_gg" in p:
        fed = [g for g in order if g in "ifo"]
        assert p["weight_gg"].shape == (len(fed) * H, len(fed) * H)
        for a, to in enumerate(fed):
            for b, frm in enumerate(fed):
                w[f"R_{to}{frm}"] = p["weight_gg"][a * H : (a + 1) * H, b * H : (b + 1) * H]
    if "weight_hr" in p:
        w["W_proj"] = p["weight_hr"]
    return w


def pre(w, gate: str, x: Tensor, h: Tensor) -> Tensor:
    """W_x{gate} x + W_h{gate} h_{t-1} + b_{gate}: the part every LSTM gate shares."""
    return lin(w[f"W_x{gate}"], x) + lin(w[f"W_h{gate}"], h) + w[f"b_{gate}"]


# --------------------------------------------------------------------------------------------
# Reference steps, one per paper. Each: (w, x (B, I), state) -> (output, new state, gates).


def vanilla_step(w, x, state):
    """Hochreiter & Schmidhuber 1997 with the forget gate of Gers, Schmidhuber & Cummins 2000."""
    h, c = state
    i = sigma(pre(w, "i", x, h))
    f = sigma(pre(w, "f", x, h))
    g = tanh(pre(w, "g", x, h))
    c_t = f * c + i * g
    o = sigma(pre(w, "o", x, h))
    h_t = o * tanh(c_t)
    return h_t, (h_t, c_t), dict(input=i, forget=f, candidate=g, output=o)


def peephole_step(w, x, state):
    """Gers & Schmidhuber 2000: i and f look at c_{t-1}; o looks at the new c_t."""
    h, c_prev = state
    i = sigma(pre(w, "i", x, h) + w["w_ci"] * c_prev)
    f = sigma(pre(w, "f", x, h) + w["w_cf"] * c_prev)
    g = tanh(pre(w, "g", x, h))
    c_t = f * c_prev + i * g
    o = sigma(pre(w, "o", x, h) + w["w_co"] * c_t)
    h_t = o * tanh(c_t)
    return h_t, (h_t, c_t), dict(input=i, forget=f, candidate=g, output=o)


def peephole_step_o_sees_c_prev(w, x, state):
    """A WRONG peephole LSTM (o looks at c_{t-1}): the peephole test must tell it apart."""
    h, c_prev = state
    i = sigma(pre(w, "i", x, h) + w["w_ci"] * c_prev)
    f = sigma(pre(w, "f", x, h) + w["w_cf"] * c_prev)
    c_t = f * c_prev + i * tanh(pre(w, "g", x, h))
    o = sigma(pre(w, "o", x, h) + w["w_co"] * c_prev)
    return o * tanh(c_t), (o * tanh(c_t), c_t), {}


def cifg_step(w, x, state):
    """Greff et al. 2015, CIFG: coupled input and forget gate, f = 1 - i."""
    h, c = state
    i = sigma(pre(w, "i", x, h))
    f = 1 - i
    g = tanh(pre(w, "g", x, h))
    c_t = f * c + i * g
    o = sigma(pre(w, "o", x, h))
    h_t = o * tanh(c_t)
    return h_t, (h_t, c_t), dict(input=i, forget=f, candidate=g, output=o)


def nig_step(w, x, state):
    """Greff et al. 2015, NIG: no input gate, i = 1."""
    h, c = state
    f = sigma(pre(w, "f", x, h))
    g = tanh(pre(w, "g", x, h))
    c_t = f * c + g
    o = sigma(pre(w, "o", x, h))
    h_t = o * tanh(c_t)
    return h_t, (h_t, c_t), dict(forget=f, candidate=g, output=o)


def nfg_step(w, x, state):
    """Greff et al. 2015, NFG: no forget gate, f = 1 (Hochreiter & Schmidhuber's 1997 cell)."""
    h, c = state
    i = sigma(pre(w, "i", x, h))
    g = tanh(pre(w, "g", x, h))
    c_t = c + i * g
    o = sigma(pre(w, "o", x, h))
    h_t = o * tanh(c_t)
    return h_t, (h_t, c_t), dict(input=i, candidate=g, output=o)


def nog_step(w, x, state):
    """Greff et al. 2015, NOG: no output gate, o = 1."""
    h, c = state
    i = sigma(pre(w, "i", x, h))
    f = sigma(pre(w, "f", x, h))
    g = tanh(pre(w, "g", x, h))
    c_t = f * c + i * g
    h_t = tanh(c_t)
    return h_t, (h_t, c_t), dict(input=i, forget=f, candidate=g)


def niaf_step(w, x, state):
    """Greff et al. 2015, NIAF: no input activation function, the candidate is linear."""
    h, c = state
    i = sigma(pre(w, "i", x, h))
    f = sigma(pre(w, "f", x, h))
    g = pre(w, "g", x, h)
    c_t = f * c + i * g
    o = sigma(pre(w, "o", x, h))
    h_t = o * tanh(c_t)
    return h_t, (h_t, c_t), dict(input=i, forget=f, candidate=g, output=o)


def noaf_step(w, x, state):
    """Greff et al. 2015, NOAF: no output activation function, h = o * c."""
    h, c = state
    i = sigma(pre(w, "i", x, h))
    f = sigma(pre(w, "f", x, h))
    g = tanh(pre(w, "g", x, h))
    c_t = f * c + i * g
    o = sigma(pre(w, "o", x, h))
    h_t = o * c_t
    return h_t, (h_t, c_t), dict(input=i, forget=f, candidate=g, output=o)


def fgr_step(w, x, state):
    """Greff et al. 2015, FGR: every gate also sees the previous step's i, f and o through its own
    recurrent matrices (R_{to}{from}, nine of them). ``a`` = [i, f, o] of step t-1, zero at
    t = 0."""
    h, c, a = state
    i_prev, f_prev, o_prev = a.chunk(3, dim=-1)

    def fed(to):
        return lin(w[f"R_{to}i"], i_prev) + lin(w[f"R_{to}f"], f_prev) + lin(w[f"R_{to}o"], o_prev)

    i = sigma(pre(w, "i", x, h) + fed("i"))
    f = sigma(pre(w, "f", x, h) + fed("f"))
    g = tanh(pre(w, "g", x, h))
    c_t = f * c + i * g
    o = sigma(pre(w, "o", x, h) + fed("o"))
    h_t = o * tanh(c_t)
    return (
        h_t,
        (h_t, c_t, torch.cat([i, f, o], dim=-1)),
        dict(input=i, forget=f, candidate=g, output=o),
    )


def lstmp_step(w, x, state):
    """Sak, Senior & Beaufays 2014, LSTMP: the recurrent (and output) r_t = W_proj (o * tanh c_t);
    the gates read r_{t-1} (P features) instead of a full-size h_{t-1}."""
    r, c = state
    i = sigma(pre(w, "i", x, r))
    f = sigma(pre(w, "f", x, r))
    g = tanh(pre(w, "g", x, r))
    c_t = f * c + i * g
    o = sigma(pre(w, "o", x, r))
    r_t = lin(w["W_proj"], o * tanh(c_t))
    return r_t, (r_t, c_t), dict(input=i, forget=f, candidate=g, output=o)


def gru_reset_before_step(w, x, state):
    """Cho et al. 2014 (v3), eqs. 5-8: the reset gate scales h_{t-1} before W_hn.
    h_t = z h_{t-1} + (1 - z) n."""
    (h,) = state
    r = sigma(lin(w["W_xr"], x) + w["b_xr"] + lin(w["W_hr"], h) + w["b_hr"])
    z = sigma(lin(w["W_xz"], x) + w["b_xz"] + lin(w["W_hz"], h) + w["b_hz"])
    n = tanh(lin(w["W_xn"], x) + w["b_xn"] + lin(w["W_hn"], r * h) + w["b_hn"])
    h_t = z * h + (1 - z) * n
    return h_t, (h_t,), dict(reset=r, update=z, candidate=n)


def gru_reset_after_step(w, x, state):
    """The GRU of cuDNN and torch.nn.GRU: the reset gate scales W_hn h_{t-1} + b_hn."""
    (h,) = state
    r = sigma(lin(w["W_xr"], x) + w["b_xr"] + lin(w["W_hr"], h) + w["b_hr"])
    z = sigma(lin(w["W_xz"], x) + w["b_xz"] + lin(w["W_hz"], h) + w["b_hz"])
    n = tanh(lin(w["W_xn"], x) + w["b_xn"] + r * (lin(w["W_hn"], h) + w["b_hn"]))
    h_t = z * h + (1 - z) * n
    return h_t, (h_t,), dict(reset=r, update=z, candidate=n)


class Variant(NamedTuple):
    layer: type
    cell: type
    kwargs: dict
    order: str  # rows of weight_ih, by gate
    step: Callable


VARIANTS = {
    "vanilla": Variant(lstmlab.LSTM, lstmlab.LSTMCell, {}, "ifgo", vanilla_step),
    "peephole": Variant(lstmlab.LSTM, lstmlab.LSTMCell, dict(peephole=True), "ifgo", peephole_step),
    "cifg": Variant(lstmlab.LSTM, lstmlab.LSTMCell, dict(coupled=True), "igo", cifg_step),
    "nig": Variant(lstmlab.LSTM, lstmlab.LSTMCell, dict(input_gate=False), "fgo", nig_step),
    "nfg": Variant(lstmlab.LSTM, lstmlab.LSTMCell, dict(forget_gate=False), "igo", nfg_step),
    "nog": Variant(lstmlab.LSTM, lstmlab.LSTMCell, dict(output_gate=False), "ifg", nog_step),
    "niaf": Variant(
        lstmlab.LSTM, lstmlab.LSTMCell, dict(input_activation=False), "ifgo", niaf_step
    ),
    "noaf": Variant(
        lstmlab.LSTM, lstmlab.LSTMCell, dict(output_activation=False), "ifgo", noaf_step
    ),
    "fgr": Variant(lstmlab.LSTM, lstmlab.LSTMCell, dict(gate_recurrence=True), "ifgo", fgr_step),
    "lstmp": Variant(lstmlab.LSTM, lstmlab.LSTMCell, dict(proj_size=2), "ifgo", lstmp_step),
    "gru_reset_before": Variant(
        lstmlab.GRU, lstmlab.GRUCell, dict(reset_after=False), "rzn", gru_reset_before_step
    ),
    "gru_reset_after": Variant(
        lstmlab.GRU, lstmlab.GRUCell, dict(reset_after=True), "rzn", gru_reset_after_step
    ),
}


# --------------------------------------------------------------------------------------------
# Helpers


def randomize(module: torch.nn.Module, seed: int) -> None:
    """Weights larger than torch's init, so that every term moves the result; peepholes larger
    still, so that confusing c_{t-1} and c_t changes the output by far more than the tolerance."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            scale = 2.0 if name.startswith("weight_c") else 0.7
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)


def random_state(sizes, *lead: int, seed: int) -> tuple[Tensor, ...]:
    """Random h, c; the FGR gate part (the third) in (0, 1) like sigmoid activations."""
    gen = torch.Generator().manual_seed(seed)
    parts = [torch.randn(*lead, n, generator=gen, dtype=DT) for n in sizes]
    if len(parts) == 3:
        parts[2] = torch.rand(*lead, sizes[2], generator=gen, dtype=DT)
    return tuple(parts)


def zero_state(sizes, *lead: int) -> tuple[Tensor, ...]:
    return tuple(torch.zeros(*lead, n, dtype=DT) for n in sizes)


def params_of(module: torch.nn.Module, suffix: str = "") -> dict[str, Tensor]:
    """One cell's parameters by their cell names: ``weight_ih_l1_reverse`` -> ``weight_ih``."""
    return {
        name[: len(name) - len(suffix)]: p
        for name, p in module.named_parameters()
        if name.endswith(suffix)
    }


def reference_run(v: Variant, w, x: Tensor, state, reverse: bool = False):
    """The reference step over a whole sequence x (T, B, I): outputs (T, B, ·), final state and
    gates {name: (T, B, H)}. ``reverse`` reads the sequence backwards (outputs in time order)."""
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    outputs, gates = {}, {}
    for t in steps:
        y, state, g = v.step(w, x[t], state)
        outputs[t], gates[t] = y, g
    order = range(x.shape[0])
    stacked = {k: torch.stack([gates[t][k] for t in order]) for k in gates[0]}
    return torch.stack([outputs[t] for t in order]), state, stacked


def as_parts(state) -> tuple[Tensor, ...]:
    return (state,) if isinstance(state, Tensor) else tuple(state)


def build(v: Variant, seed: int = 0, **extra) -> torch.nn.Module:
    layer = v.layer(I, H, dtype=DT, **v.kwargs, **extra)
    randomize(layer, seed)
    return layer


def reference_stack(v: Variant, layer, x: Tensor, hx, lengths=None):
    """The reference for a whole layer: every layer and direction with its own weights
    (``..._l{k}``, ``..._l{k}_reverse``), layer k+1 reading [forward, backward] of layer k, each
    sequence on its own and cut to its length (then zeros, as torch pads). x (T, B, I); hx parts
    (L * D, B, ·). Returns the output (T, B, D * P) and the final state parts (L * D, B, ·)."""
    steps, batch = x.shape[:2]
    D = layer.num_directions
    outputs, finals = [], []
    for b, n in enumerate([steps] * batch if lengths is None else lengths):
        inp, final = x[:n, b : b + 1], []
        for lay in range(layer.num_layers):
            outs = []
            for d, suffix in enumerate((f"_l{lay}", f"_l{lay}_reverse")[:D]):
                w = paper_weights(params_of(layer, suffix), v.order)
                start = tuple(part[lay * D + d, b : b + 1] for part in hx)
                o, state, _ = reference_run(v, w, inp, start, reverse=d == 1)
                outs.append(o)
                final.append(state)
            inp = torch.cat(outs, dim=-1)
        outputs.append(torch.cat([inp, inp.new_zeros(steps - n, 1, inp.shape[-1])]))
        finals.append([torch.stack(parts) for parts in zip(*final)])  # (L * D, 1, ·) each
    return torch.cat(outputs, dim=1), tuple(torch.cat(parts, dim=1) for parts in zip(*finals))


def assert_state_close(got, want) -> None:
    got = as_parts(got)
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want)):
        torch.testing.assert_close(a, b, **TOL, msg=lambda m: f"state part {k}: {m}")


PATHS = ["fused", "readable"]


@contextmanager
def taking(path: str):
    """Layers and cells through their fast paths (the C++ kernels, torch's kernel for the plain
    LSTM), or through the readable loop over ``step``."""
    if path == "readable":
        with lstmlab.kernels.disabled():
            yield
    else:
        # Without the kernels, "fused" would test the readable loop a second time.
        assert lstmlab.kernels.extension() is not None
        yield


def hx_arg(parts: tuple[Tensor, ...]):
    """The initial state as torch passes it: one tensor for a one-part state, else a tuple."""
    return parts[0] if len(parts) == 1 else parts


# --------------------------------------------------------------------------------------------
# 1. Each variant against its paper.


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", list(VARIANTS))
def test_layer_matches_paper(name, path):
    v = VARIANTS[name]
    layer = build(v)
    sizes = layer.cells[0].state_sizes
    x = torch.randn(T, B, I, dtype=DT, generator=torch.Generator().manual_seed(1))
    w = paper_weights(params_of(layer, "_l0"), v.order)
    with taking(path):
        for start in (random_state(sizes, B, seed=2), zero_state(sizes, B)):
            out, h_n = layer(x, hx_arg(tuple(s.unsqueeze(0) for s in start)))  # (1, B, ·) each
            ref_out, ref_state, _ = reference_run(v, w, x, start)
            torch.testing.assert_close(out, ref_out, **TOL)
            assert_state_close(h_n, [s.unsqueeze(0) for s in ref_state])
        # No initial state means zeros -- for FGR also "no gate was open before the first step".
        out, h_n = layer(x)
        torch.testing.assert_close(out, ref_out, **TOL)
        assert_state_close(h_n, [s.unsqueeze(0) for s in ref_state])


@pytest.mark.parametrize("name", list(VARIANTS))
def test_layer_gates_match_paper(name):
    """return_gates=True: the activations of every step, as the paper's equations give them."""
    v = VARIANTS[name]
    layer = build(v, seed=21)
    x = torch.randn(T, B, I, dtype=DT, generator=torch.Generator().manual_seed(22))
    start = random_state(layer.cells[0].state_sizes, B, seed=23)
    out, h_n, gates = layer(x, hx_arg(tuple(s.unsqueeze(0) for s in start)), return_gates=True)
    ref_out, ref_state, ref_gates = reference_run(
        v, paper_weights(params_of(layer, "_l0"), v.order), x, start
    )
    torch.testing.assert_close(out, ref_out, **TOL)
    assert_state_close(h_n, [s.unsqueeze(0) for s in ref_state])
    assert len(gates) == 1 and sorted(gates[0]) == sorted(ref_gates)
    for k in ref_gates:
        torch.testing.assert_close(gates[0][k], ref_gates[k], **TOL, msg=lambda m: f"{k}: {m}")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_cell_step_matches_paper(name):
    v = VARIANTS[name]
    cell = v.cell(I, H, dtype=DT, **v.kwargs)
    randomize(cell, 3)
    w = paper_weights(dict(cell.named_parameters()), v.order)
    x = torch.randn(T, B, I, dtype=DT, generator=torch.Generator().manual_seed(4))
    state = ref_state = random_state(cell.state_sizes, B, seed=5)
    for t in range(T):
        h, state, gates = cell.step(x[t], state)
        ref_h, ref_state, ref_gates = v.step(w, x[t], ref_state)
        torch.testing.assert_close(h, ref_h, **TOL)
        assert_state_close(state, ref_state)
        assert sorted(gates) == sorted(ref_gates)
        for k in ref_gates:
            torch.testing.assert_close(gates[k], ref_gates[k], **TOL, msg=lambda m: f"{k}: {m}")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", list(VARIANTS))
def test_cell_call_matches_paper(name, path):
    """``cell(x, hx)``, torch's calling convention, hands back the reference's new state."""
    v = VARIANTS[name]
    cell = v.cell(I, H, dtype=DT, **v.kwargs)
    randomize(cell, 24)
    w = paper_weights(dict(cell.named_parameters()), v.order)
    x = torch.randn(T, B, I, dtype=DT, generator=torch.Generator().manual_seed(25))
    state = ref_state = random_state(cell.state_sizes, B, seed=26)
    with taking(path):
        for t in range(T):
            state = as_parts(cell(x[t], hx_arg(state)))
            _, ref_state, _ = v.step(w, x[t], ref_state)
            assert_state_close(state, ref_state)
        assert_state_close(cell(x[0]), v.step(w, x[0], zero_state(cell.state_sizes, B))[1])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", list(VARIANTS))
def test_stacked_bidirectional_matches_paper(name, path):
    """Two layers, both directions: the weights named ``..._l{k}`` and ``..._l{k}_reverse``
    are the ones each layer and direction uses; layer 1 reads [forward, backward] of layer 0."""
    v = VARIANTS[name]
    layer = build(v, seed=6, num_layers=2, bidirectional=True)
    x = torch.randn(T, B, I, dtype=DT, generator=torch.Generator().manual_seed(7))
    hx = random_state(layer.cells[0].state_sizes, 4, B, seed=8)  # (L * D, B, ·) per part
    with taking(path):
        out, h_n = layer(x, hx_arg(hx))
    ref_out, ref_state = reference_stack(v, layer, x, hx)
    torch.testing.assert_close(out, ref_out, **TOL)
    assert_state_close(h_n, ref_state)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", list(VARIANTS))
def test_variable_lengths_match_paper(name, path):
    """Each sequence of a padded batch gives what it gives alone, cut to its length."""
    v = VARIANTS[name]
    layer = build(v, seed=27, num_layers=2, bidirectional=True)
    lengths = [2, T, 4]
    x = torch.randn(T, 3, I, dtype=DT, generator=torch.Generator().manual_seed(28))
    hx = random_state(layer.cells[0].state_sizes, 4, 3, seed=29)
    with taking(path):
        out, h_n = layer(x, hx_arg(hx), lengths=torch.tensor(lengths))
    ref_out, ref_state = reference_stack(v, layer, x, hx, lengths)
    torch.testing.assert_close(out, ref_out, **TOL)
    assert_state_close(h_n, ref_state)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "name", ["peephole", "cifg", "fgr", "lstmp", "gru_reset_before", "gru_reset_after"]
)
def test_layer_without_bias_matches_paper(name, path):
    v = VARIANTS[name]
    layer = build(v, seed=18, bias=False)
    assert not any("bias" in n for n, _ in layer.named_parameters())
    x = torch.randn(T, B, I, dtype=DT, generator=torch.Generator().manual_seed(19))
    hx = random_state(layer.cells[0].state_sizes, 1, B, seed=20)
    with taking(path):
        out, h_n = layer(x, hx_arg(hx))
    ref_out, ref_state = reference_stack(v, layer, x, hx)
    torch.testing.assert_close(out, ref_out, **TOL)
    assert_state_close(h_n, ref_state)


def test_peephole_timing_is_visible():
    """The peephole test can tell c_{t-1} from c_t at the output gate: with the test's weights,
    the wrong reference misses the library's output by orders of magnitude more than TOL."""
    v = VARIANTS["peephole"]
    layer = build(v)
    x = torch.randn(T, B, I, dtype=DT, generator=torch.Generator().manual_seed(1))
    start = random_state(layer.cells[0].state_sizes, B, seed=2)
    out, _ = layer(x, tuple(s.unsqueeze(0) for s in start))  # through the kernels
    w = paper_weights(params_of(layer, "_l0"), v.order)
    right, _, _ = reference_run(v, w, x, start)
    wrong, _, _ = reference_run(v._replace(step=peephole_step_o_sees_c_prev), w, x, start)
    torch.testing.assert_close(out, right, **TOL)
    assert (out - wrong).abs().max() > 1e-2
    # ...and every peephole weight matters: zeroing any one of them moves the output.
    for gate in "ifo":
        w0 = dict(w, **{f"w_c{gate}": torch.zeros_like(w[f"w_c{gate}"])})
        assert (out - reference_run(v, w0, x, start)[0]).abs().max() > 1e-2, gate


# --------------------------------------------------------------------------------------------
# 2. Neutral variant weights give the plain LSTM.

GATE_SUBSETS = {
    "plain": {},
    "cifg": dict(coupled=True),
    "nig": dict(input_gate=False),
    "nfg": dict(forget_gate=False),
    "nog": dict(output_gate=False),
    "only_forget": dict(input_gate=False, output_gate=False),
    "niaf_noaf": dict(input_activation=False, output_activation=False),
    "proj": dict(proj_size=2),
}


def plain_and_variant(flags: dict, switch: str):
    """A plain LSTM and the same LSTM with ``switch`` on, sharing every weight they both have;
    the variant's own weights are zeroed. Returns both and the names of the zeroed weights."""
    kw = dict(num_layers=2, bidirectional=True, dtype=DT, **flags)
    plain, variant = lstmlab.LSTM(I, H, **kw), lstmlab.LSTM(I, H, **kw, **{switch: True})
    randomize(plain, 9)
    missing, unexpected = variant.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected
    assert missing, f"{switch}=True added no weights"
    with torch.no_grad():
        for name in missing:
            getattr(variant, name).zero_()
    return plain, variant, missing


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("flags", GATE_SUBSETS.values(), ids=GATE_SUBSETS.keys())
def test_zero_peepholes_give_the_plain_lstm(flags, path):
    plain, variant, zeroed = plain_and_variant(flags, "peephole")
    assert all(name.startswith(("weight_ci", "weight_cf", "weight_co")) for name in zeroed)
    x = torch.randn(T, B, I, dtype=DT, generator=torch.Generator().manual_seed(30))
    hx = random_state(plain.cells[0].state_sizes, 4, B, seed=10)
    with taking(path):
        out_p, st_p = plain(x, hx)
        out_v, st_v = variant(x, hx)
        torch.testing.assert_close(out_v, out_p, **TOL)
        assert_state_close(st_v, st_p)
        # Not vacuous: with the peepholes back on, the output moves.
        randomize(variant, 11)
        variant.load_state_dict(plain.state_dict(), strict=False)
        assert (variant(x, hx)[0] - out_p).abs().max() > 1e-3


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("flags", GATE_SUBSETS.values(), ids=GATE_SUBSETS.keys())
def test_zero_gate_recurrence_gives_the_plain_lstm(flags, path):
    plain, variant, zeroed = plain_and_variant(flags, "gate_recurrence")
    assert all(name.startswith("weight_gg") for name in zeroed)
    cell = variant.cells[0]
    x = torch.randn(T, B, I, dtype=DT, generator=torch.Generator().manual_seed(31))
    h0, c0, a0 = random_state(cell.state_sizes, 4, B, seed=12)  # a0 is ignored by zero W_gg
    with taking(path):
        out_p, (h_p, c_p) = plain(x, (h0, c0))
        out_v, (h_v, c_v, a_v) = variant(x, (h0, c0, a0))
        torch.testing.assert_close(out_v, out_p, **TOL)
        torch.testing.assert_close(h_v, h_p, **TOL)
        torch.testing.assert_close(c_v, c_p, **TOL)
        # a_n: the sigmoid gates of each layer and direction's last step, in the order i, f, o.
        _, _, gates_p = plain(x, (h0, c0), return_gates=True)
        fed = [g for g in ("input", "forget", "output") if g in cell.sigmoid_gates]
        for k, gates in enumerate(gates_p):
            last = 0 if k % 2 else -1  # the backward run ends at t=0
            torch.testing.assert_close(a_v[k], torch.cat([gates[g][last] for g in fed], -1), **TOL)
        # Not vacuous: with W_gg back on, the output moves.
        randomize(variant, 13)
        variant.load_state_dict(plain.state_dict(), strict=False)
        assert (variant(x, (h0, c0, a0))[0] - out_p).abs().max() > 1e-3


# --------------------------------------------------------------------------------------------
# 3. Gradients: every valid combination of the switches, through the layer.

SWITCHES = (
    "peephole",
    "coupled",
    "input_gate",
    "forget_gate",
    "output_gate",
    "input_activation",
    "output_activation",
    "gate_recurrence",
)
DEFAULTS = dict(
    peephole=False,
    coupled=False,
    input_gate=True,
    forget_gate=True,
    output_gate=True,
    input_activation=True,
    output_activation=True,
    gate_recurrence=False,
)
ALL_COMBOS = [dict(zip(SWITCHES, bits)) for bits in itertools.product((False, True), repeat=8)]


def combo_id(flags: dict) -> str:
    return "+".join(k if v else f"no_{k}" for k, v in flags.items() if v != DEFAULTS[k]) or "plain"


def violated_rules(f: dict) -> list[tuple[str, ...]]:
    """The arguments of each rule a combination breaks (our own statement of the rules)."""
    no_gates = not (f["input_gate"] or f["forget_gate"] or f["output_gate"])
    rules = []
    if f["coupled"] and not f["forget_gate"]:
        rules.append(("coupled", "forget_gate"))
    if f["coupled"] and not f["input_gate"]:
        rules.append(("coupled", "input_gate"))
    if f["gate_recurrence"] and no_gates:
        rules.append(("gate_recurrence", "input_gate", "forget_gate", "output_gate"))
    if f["peephole"] and no_gates:
        rules.append(("peephole", "input_gate", "forget_gate", "output_gate"))
    return rules


def constructible(flags: dict) -> bool:
    try:
        lstmlab.LSTM(2, 3, **flags)
    except ValueError:
        return False
    return True


VALID = [f for f in ALL_COMBOS if constructible(f)]
INVALID = [f for f in ALL_COMBOS if violated_rules(f)]


def test_the_valid_combinations_are_exactly_the_expected_ones():
    # coupled needs input and forget gates: 2^6 = 64 combos with coupled, minus 3/4 of them;
    # without coupling, peephole or gate_recurrence with no gate at all: 3 * 4 = 12 combos.
    assert len(VALID) == 32 + (128 - 12) == 148
    expected = [f for f in ALL_COMBOS if not violated_rules(f)]
    assert [combo_id(f) for f in VALID] == [combo_id(f) for f in expected]


def check_layer_gradients(
    layer: torch.nn.Module,
    x: Tensor,
    hx: tuple[Tensor, ...],
    *,
    fast_mode: bool,
    lengths: list[int] | None = None,
) -> None:
    """gradcheck w.r.t. the input, every part of the initial state and every parameter (passed in
    through functional_call), over the output and every part of the final state."""
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    x = x.detach().clone().requires_grad_()
    hx = [s.detach().clone().requires_grad_() for s in hx]
    kwargs = {} if lengths is None else {"lengths": torch.tensor(lengths)}

    def f(x, *rest):
        ps, hs = rest[: len(names)], rest[len(names) :]
        out, h_n = functional_call(layer, dict(zip(names, ps)), (x, hx_arg(hs)), kwargs)
        return (out, *as_parts(h_n))

    # Not vacuous: the parameters handed in are the ones that run (each gets a gradient).
    outs = f(x, *params, *hx)
    grads = torch.autograd.grad(
        sum((o * torch.randn_like(o)).sum() for o in outs), [x, *params, *hx]
    )
    for name, g in zip(["input", *names, *(f"hx[{k}]" for k in range(len(hx)))], grads):
        assert g.abs().max() > 0, f"no gradient reaches {name}"
    assert gradcheck(f, (x, *params, *hx), fast_mode=fast_mode)


def tiny(layer_cls, *, seed: int, num_layers: int = 1, bidirectional: bool = False, **kwargs):
    """Input 2, hidden 3, batch 2, 3 steps: small enough to gradcheck 148 variants quickly."""
    torch.manual_seed(seed)
    layer = layer_cls(2, 3, num_layers=num_layers, bidirectional=bidirectional, dtype=DT, **kwargs)
    randomize(layer, seed)
    x = torch.randn(3, 2, 2, dtype=DT)
    lead = num_layers * (2 if bidirectional else 1)
    hx = random_state(layer.cells[0].state_sizes, lead, 2, seed=seed + 1)
    return layer, x, hx


@pytest.mark.parametrize("flags", VALID, ids=[combo_id(f) for f in VALID])
def test_gradcheck_every_valid_combination(flags):
    """Through the layer's default path: the hand-written backward of the C++ kernels (torch's
    own kernel for the plain LSTM), entry by entry."""
    with taking("fused"):
        check_layer_gradients(*tiny(lstmlab.LSTM, seed=14, **flags), fast_mode=False)


NAMED = {
    **{name: (v.layer, v.kwargs) for name, v in VARIANTS.items()},
    "all_switches": (
        lstmlab.LSTM,
        dict(
            peephole=True,
            coupled=True,
            input_activation=False,
            output_activation=False,
            gate_recurrence=True,
            proj_size=2,
        ),
    ),
    "rnn_tanh": (lstmlab.RNN, dict(nonlinearity="tanh")),
    "rnn_relu": (lstmlab.RNN, dict(nonlinearity="relu")),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", list(NAMED))
def test_gradcheck_named_variants(name, path):
    layer_cls, kwargs = NAMED[name]
    with taking(path):
        check_layer_gradients(*tiny(layer_cls, seed=15, **kwargs), fast_mode=False)


BIDI_PROJ = {
    "plain": {},
    "peephole": dict(peephole=True),
    "cifg": dict(coupled=True),
    "fgr": dict(gate_recurrence=True),
    "nig_nog": dict(input_gate=False, output_gate=False),
    "nfg_niaf": dict(forget_gate=False, input_activation=False),
    "peephole_fgr_noaf": dict(peephole=True, gate_recurrence=True, output_activation=False),
}
LENGTHS = {"full": None, "padded": [3, 2]}


@pytest.mark.parametrize("lengths", LENGTHS.values(), ids=LENGTHS.keys())
@pytest.mark.parametrize("flags", BIDI_PROJ.values(), ids=BIDI_PROJ.keys())
def test_gradcheck_projected_bidirectional_two_layers(flags, lengths):
    # fast_mode: one random projection of the Jacobian per input tensor (the stack has ~20)
    layer, x, hx = tiny(
        lstmlab.LSTM, seed=16, num_layers=2, bidirectional=True, proj_size=2, **flags
    )
    with taking("fused"):
        check_layer_gradients(layer, x, hx, fast_mode=True, lengths=lengths)


@pytest.mark.parametrize("lengths", LENGTHS.values(), ids=LENGTHS.keys())
@pytest.mark.parametrize(
    "layer_cls,kwargs",
    [
        (lstmlab.GRU, dict(reset_after=True)),
        (lstmlab.GRU, dict(reset_after=False)),
        (lstmlab.RNN, dict(nonlinearity="tanh")),
        (lstmlab.RNN, dict(nonlinearity="relu")),
    ],
    ids=["gru_reset_after", "gru_reset_before", "rnn_tanh", "rnn_relu"],
)
def test_gradcheck_gru_rnn_bidirectional_two_layers(layer_cls, kwargs, lengths):
    layer, x, hx = tiny(layer_cls, seed=17, num_layers=2, bidirectional=True, **kwargs)
    with taking("fused"):
        check_layer_gradients(layer, x, hx, fast_mode=True, lengths=lengths)


# --------------------------------------------------------------------------------------------
# 4. Invalid combinations are refused, by name.


@pytest.mark.parametrize("flags", INVALID, ids=[combo_id(f) for f in INVALID])
def test_invalid_combinations_raise_naming_their_arguments(flags):
    rules = violated_rules(flags)
    for build_it in (
        lambda: lstmlab.LSTMCell(2, 3, **flags),
        lambda: lstmlab.LSTM(2, 3, **flags),
        lambda: lstmlab.LSTM(2, 3, proj_size=1, bidirectional=True, **flags),
    ):
        with pytest.raises(ValueError) as err:
            build_it()
        message = str(err.value)
        assert any(all(arg in message for arg in rule) for rule in rules), (
            f"{message!r} names none of {rules}"
        )


@pytest.mark.parametrize("proj_size", [3, 4, -1])
def test_bad_proj_size_raises_naming_it(proj_size):
    for build_it in (
        lambda: lstmlab.LSTMCell(2, 3, proj_size=proj_size),
        lambda: lstmlab.LSTM(2, 3, proj_size=proj_size),
    ):
        with pytest.raises(ValueError, match="proj_size"):
            build_it()
