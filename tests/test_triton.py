"""The Triton kernels on CPU tensors, run by Triton's interpreter (``TRITON_INTERPRET=1``), and the
backend switch ``LSTMLAB_BACKEND``.

Oracles: torch.nn.LSTM / GRU / RNN with copied weights (the standard cells), the readable loop
(every variant with a Triton kernel, with padding, both directions, the regularisers) and the
C++ operators themselves (every output of forward and backward, in float64). Triton decides at a
kernel's definition whether the interpreter runs it, so the fixture sets TRITON_INTERPRET before
anything imports ``lstmlab.kernels.triton`` (which only these tests do, and only inside a test).
The interpreter is slow: the default tests use a few steps of tiny layers; the larger set is
marked ``slow_interpreter`` (``pytest -m slow_interpreter``).
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from lstmlab import GRU, LSTM, RNN, kernels
from lstmlab.kernels import backend
from lstmlab.nn import dispatch
from lstmlab.nn.registry import VARIANTS, make_layer

pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[1]
# The variants whose families have Triton kernels (the clockwork RNN runs on the Elman one).
TRITON_VARIANTS = [
    name
    for name, (_, kw, _) in VARIANTS.items()
    if VARIANTS[name][0] in (LSTM, GRU, RNN) and not kw.get("layer_norm")
] + ["clockwork"]


@pytest.fixture(autouse=True)
def triton_backend(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv("LSTMLAB_BACKEND", "triton")


@pytest.fixture
def triton_calls(monkeypatch):
    """Counts the calls of each Triton operator implementation (by operator name)."""
    calls: dict[str, int] = {}
    real = backend.triton_kernel

    def counted(name):
        kernel = real(name)

        def call(*args):
            calls[name] = calls.get(name, 0) + 1
            return kernel(*args)

        return call

    monkeypatch.setattr(backend, "triton_kernel", counted)
    return calls


def outputs_and_grads(layer, x, hx, lengths=None, seed=5):
    """The output, the final state and the gradients of x, the initial state and every weight
    of a random linear function of them."""
    out, state = layer(x, hx) if lengths is None else layer(x, hx, lengths=lengths)
    state = [state] if isinstance(state, torch.Tensor) else list(state)
    g = torch.Generator().manual_seed(seed)
    loss = sum((t * torch.randn(t.shape, generator=g).to(t.dtype)).sum() for t in [out, *state])
    hx = [] if hx is None else [hx] if isinstance(hx, torch.Tensor) else list(hx)
    leaves = [x, *hx, *layer.parameters()]
    return [out, *state, *torch.autograd.grad(loss, leaves)]


def assert_all_close(fast, slow, atol, rtol=0.0):
    assert len(fast) == len(slow)
    for k, (a, b) in enumerate(zip(fast, slow)):
        torch.testing.assert_close(
            a.float() if b.dtype == torch.float32 else a,
            b,
            atol=atol,
            rtol=rtol,
            msg=lambda m, k=k: f"result {k}: {m}",
        )


def against_readable(layer, x, hx, lengths, atol, *, seed=0):
    torch.manual_seed(seed)  # the same recurrent-dropout masks in both runs
    fast = outputs_and_grads(layer, x, hx, lengths)
    torch.manual_seed(seed)
    with kernels.disabled():
        slow = outputs_and_grads(layer, x, hx, lengths)
    assert_all_close(fast, slow, atol)


def case(name, *, dtype=torch.float64, T=4, B=3, size=(2, 3), **kw):
    torch.manual_seed(0)
    layer = make_layer(name, *size, **kw).to(dtype)
    x = torch.randn(T, B, size[0], dtype=dtype, requires_grad=True)
    lengths = torch.tensor([T, 2, 3, 1][:B])
    return layer, x, lengths


# --- against torch.nn with copied weights ------------------------------------------------------


@pytest.mark.parametrize(
    "ours, theirs, kw",
    [
        (LSTM, nn.LSTM, {}),
        (LSTM, nn.LSTM, {"proj_size": 2}),
        (GRU, nn.GRU, {}),
        (RNN, nn.RNN, {}),
        (RNN, nn.RNN, {"nonlinearity": "relu"}),
    ],
)
def test_standard_layers_match_torch(ours, theirs, kw, triton_calls):
    torch.manual_seed(0)
    reference = theirs(3, 4, num_layers=2, bidirectional=True, **kw)
    layer = ours(3, 4, num_layers=2, bidirectional=True, **kw)
    layer.load_state_dict(reference.state_dict())
    x = torch.randn(5, 2, 3, requires_grad=True)
    ours_ = outputs_and_grads(layer, x, None)
    out, state = reference(x)
    state = [state] if isinstance(state, torch.Tensor) else list(state)
    g = torch.Generator().manual_seed(5)
    loss = sum((t * torch.randn(t.shape, generator=g)).sum() for t in [out, *state])
    theirs_ = [out, *state, *torch.autograd.grad(loss, [x, *reference.parameters()])]
    assert_all_close(ours_, theirs_, atol=2e-5)
    family = ours.__name__.lower()
    assert triton_calls[f"{family}_forward"] == 4  # 2 layers x 2 directions
    assert triton_calls[f"{family}_backward"] == 4


# --- against the readable loop -----------------------------------------------------------------


@pytest.mark.parametrize("name", TRITON_VARIANTS)
def test_variants_match_readable_loop(name, triton_calls):
    """float64, padding, both directions (clockwork: one), a given initial state."""
    bidirectional = name != "clockwork"
    layer, x, lengths = case(name, bidirectional=bidirectional)
    hx = None
    if name != "clockwork":
        sizes = layer.cells[0].state_sizes
        parts = [torch.randn(2, 3, n, dtype=x.dtype, requires_grad=True) for n in sizes]
        hx = parts[0] if len(parts) == 1 else tuple(parts)
    against_readable(layer, x, hx, lengths, atol=1e-10)
    assert sum(triton_calls.values()) == 2 * (2 if bidirectional else 1)


@pytest.mark.parametrize("name", ["peephole", "fgr", "gru", "gru-v3", "rnn"])
def test_float32_matches_readable_loop(name, triton_calls):
    layer, x, lengths = case(name, dtype=torch.float32, bidirectional=True)
    against_readable(layer, x, None, lengths, atol=2e-5)
    assert triton_calls


@pytest.mark.parametrize("name", ["lstm", "coupled", "fgr", "gru", "gru-v3", "rnn"])
@pytest.mark.parametrize("training", [True, False])
def test_regularizers_match_readable_loop(name, training, triton_calls):
    """Recurrent dropout (its masks drawn alike in both runs) and zoneout: random keep draws
    while training, the constant keep weight in evaluation."""
    layer, x, lengths = case(name, recurrent_dropout=0.4, zoneout=0.3, bidirectional=True)
    layer.train(training)
    against_readable(layer, x, None, lengths, atol=1e-10)
    assert triton_calls


def test_projection_with_regularizers_matches_readable_loop(triton_calls):
    layer, x, lengths = case(
        "peephole", size=(2, 4), proj_size=2, recurrent_dropout=0.3, zoneout=0.2
    )
    against_readable(layer, x, None, lengths, atol=1e-10)
    assert triton_calls["lstm_backward"] == 1


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", ["lstm", "gru", "rnn"])
def test_half_precision_computes_in_its_dtype(name, dtype, triton_calls):
    """The Triton kernels take half-precision tensors as they are (no float32 copies) and stay
    close to the float32 readable loop on the same (rounded) weights and inputs."""
    layer, x, lengths = case(name, dtype=dtype, size=(3, 4), bidirectional=True)
    fast = outputs_and_grads(layer, x, None, lengths)
    assert all(t.dtype == dtype for t in fast)
    wide = layer.float()
    x32 = x.detach().float().requires_grad_()
    with kernels.disabled():
        slow = outputs_and_grads(wide, x32, None, lengths)
    assert_all_close(fast, slow, atol=4e-2, rtol=4e-2)
    assert triton_calls


# --- the operators against the C++ kernels -------------------------------------------------------

LSTM_SWITCHES = [
    {},
    {"peephole": True, "coupled": True},
    {"forget_gate": False, "output_gate": False, "peephole": True},
    {"input_gate": False, "input_activation": False, "output_activation": False},
    {"gate_recurrence": True, "peephole": True},
    {"proj_size": 2, "gate_recurrence": True, "peephole": True},
]
LSTM_SWITCHES_SLOW = [
    {"coupled": True},
    {"input_gate": False},
    {"forget_gate": False},
    {"output_gate": False, "peephole": True},
    {"input_activation": False},
    {"output_activation": False},
    {"gate_recurrence": True, "coupled": True, "peephole": True},
    {"input_gate": False, "forget_gate": False, "output_gate": False},
    {"proj_size": 2},
    {"proj_size": 3, "coupled": True, "output_activation": False},
    {"bias": False, "gate_recurrence": True},
]
REGULARISERS = [(False, False, False), (True, True, True)]
REGULARISERS_SLOW = [(True, False, False), (False, True, False), (False, False, True)]


def _lstm_ops_match_cpp(kw, drop, zone_h, lengths_on):
    from lstmlab.kernels import lstm as fused
    from lstmlab.kernels._build import compiled
    from lstmlab.kernels.triton import lstm as tri
    from lstmlab.nn.cells.lstm import LSTMCell

    torch.manual_seed(1)
    dt, T, B, H = torch.float64, 4, 3, 4
    cell = LSTMCell(3, H, **kw).double()
    P = cell.proj_size or H
    none = torch.empty(0, dtype=dt)

    def part(t):
        return none if t is None else t.detach()

    bias = none if cell.bias_ih is None else (cell.bias_ih + cell.bias_hh).detach()
    s_h = cell.weight_gg.shape[0] if cell.weight_gg is not None else 0
    weights = [part(getattr(cell, f"weight_{k}")) for k in ("hr", "ci", "cf", "co", "gg")]
    x = torch.randn(T, B, 3, dtype=dt)
    args = [
        x,
        cell.weight_ih.detach(),
        bias,
        cell.weight_hh.detach(),
        *weights,
        torch.randn(B, P, dtype=dt),
        torch.randn(B, H, dtype=dt),
        torch.rand(B, s_h, dtype=dt) if s_h else none,
        torch.tensor([4, 2, 3]) if lengths_on else none.long(),
        fused._layout(cell),
        (torch.rand(B, P) > 0.3).to(dt) * 1.4 if drop else none,
        (torch.rand(T, B, P) > 0.5).to(dt) if zone_h else none,
        (torch.rand(T, B, H) > 0.5).to(dt) if zone_h else none,
    ]
    expected = compiled().lstm_forward(*args)
    assert_all_close(tri.lstm_forward(*args), expected, atol=1e-12)
    hs, cs, acts, ms, a_s, cz = expected
    grads = [
        torch.randn_like(hs),
        torch.randn_like(cs[0]),
        torch.randn_like(a_s[0]) if s_h else none,
    ]
    back = [*grads, x, args[1], args[3], *weights, hs, cs, acts, ms, a_s, *args[12:14]]
    back += [*args[14:], cz]
    assert_all_close(tri.lstm_backward(*back), compiled().lstm_backward(*back), atol=1e-12)


@pytest.mark.parametrize("kw", LSTM_SWITCHES)
@pytest.mark.parametrize("regularisers", REGULARISERS)
def test_lstm_operators_match_cpp(kw, regularisers):
    _lstm_ops_match_cpp(kw, *regularisers[:2], lengths_on=regularisers[2])


@pytest.mark.slow_interpreter
@pytest.mark.parametrize("kw", LSTM_SWITCHES + LSTM_SWITCHES_SLOW)
@pytest.mark.parametrize("regularisers", REGULARISERS + REGULARISERS_SLOW)
def test_lstm_operators_match_cpp_every_switch(kw, regularisers):
    _lstm_ops_match_cpp(kw, *regularisers[:2], lengths_on=regularisers[2])


def _gru_rnn_ops_match_cpp(family, form, bias, drop, zone_h, lengths_on):
    from lstmlab.kernels._build import compiled
    from lstmlab.kernels.triton import gru, rnn

    torch.manual_seed(2)
    dt, T, B, I, H = torch.float64, 4, 3, 3, 4
    n = 3 if family == "gru" else 1
    none = torch.empty(0, dtype=dt)
    x = torch.randn(T, B, I, dtype=dt)
    w_ih, w_hh = torch.randn(n * H, I, dtype=dt), 0.5 * torch.randn(n * H, H, dtype=dt)
    lengths = torch.tensor([4, 2, 3]) if lengths_on else none.long()
    mask = (torch.rand(B, H) > 0.3).to(dt) * 1.4 if drop else none
    keep = (torch.rand(T, B, H) > 0.5).to(dt) if zone_h else none
    h0 = torch.randn(B, H, dtype=dt)
    ext = compiled()
    if family == "gru":
        b_ih, b_hh = (
            (torch.randn(3 * H, dtype=dt), torch.randn(3 * H, dtype=dt))
            if bias
            else (
                none,
                none,
            )
        )
        args = [x, w_ih, b_ih, w_hh, b_hh, h0, lengths, form, mask, keep]
        hs, acts, aux = ext.gru_forward(*args)
        got = gru.gru_forward(*args)
        live = torch.arange(T).view(T, 1, 1) < (lengths.view(1, B, 1) if lengths_on else T)
        assert_all_close([got[0], got[1], got[2] * live], [hs, acts, aux * live], atol=1e-12)
        back = [torch.randn_like(hs), x, w_ih, w_hh, bias, hs, acts, aux, lengths, form, mask, keep]
        assert_all_close(gru.gru_backward(*back), ext.gru_backward(*back), atol=1e-12)
    else:
        b = torch.randn(H, dtype=dt) if bias else none
        args = [x, w_ih, b, w_hh, h0, lengths, form, mask, keep]
        expected = ext.rnn_forward(*args)
        assert_all_close(rnn.rnn_forward(*args), expected, atol=1e-12)
        hs, hz = expected
        back = [torch.randn_like(hs), x, w_ih, w_hh, bias, hs, lengths, form, mask, keep, hz]
        assert_all_close(rnn.rnn_backward(*back), ext.rnn_backward(*back), atol=1e-12)


@pytest.mark.parametrize("family, form", [("gru", True), ("gru", False), ("rnn", False)])
@pytest.mark.parametrize("regularisers", REGULARISERS)
def test_gru_and_rnn_operators_match_cpp(family, form, regularisers):
    _gru_rnn_ops_match_cpp(family, form, True, *regularisers)


@pytest.mark.slow_interpreter
@pytest.mark.parametrize(
    "family, form", [("gru", True), ("gru", False), ("rnn", False), ("rnn", True)]
)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("regularisers", REGULARISERS + REGULARISERS_SLOW)
def test_gru_and_rnn_operators_match_cpp_every_switch(family, form, bias, regularisers):
    _gru_rnn_ops_match_cpp(family, form, bias, *regularisers)


def test_opcheck_on_the_triton_backend():
    """The operators' schema, fake kernel and autograd hold for the Triton implementation."""
    from lstmlab.kernels.rnn import rnn_forward

    torch.manual_seed(0)
    x = torch.randn(3, 2, 2, requires_grad=True)
    w_ih, w_hh = torch.randn(3, 2, requires_grad=True), torch.randn(3, 3, requires_grad=True)
    none = torch.empty(0)
    args = (
        x,
        w_ih,
        torch.randn(3),
        w_hh,
        torch.randn(2, 3),
        torch.tensor([3, 1]),
        False,
        none,
        none,
    )
    torch.library.opcheck(rnn_forward, args)


@pytest.mark.slow_interpreter
@pytest.mark.parametrize("name", TRITON_VARIANTS)
def test_larger_layers_match_readable_loop(name, triton_calls):
    layer, x, lengths = case(
        name, T=9, B=4, size=(5, 12), num_layers=2, bidirectional=name != "clockwork"
    )
    against_readable(layer, x, None, lengths, atol=1e-10)
    assert triton_calls


# --- the switch --------------------------------------------------------------------------------


def test_readable_backend_runs_the_readable_loop(monkeypatch, triton_calls):
    monkeypatch.setenv("LSTMLAB_BACKEND", "readable")
    layer, x, lengths = case("peephole")
    assert dispatch.sequence_op(layer.cells[0], x) is None
    assert dispatch.step_op(layer.cells[0], x[0], (x[0, :, :0],)) is None
    fast = outputs_and_grads(layer, x, None, lengths)
    with kernels.disabled():
        slow = outputs_and_grads(layer, x, None, lengths)
    assert_all_close(fast, slow, atol=0.0)
    assert not triton_calls


@pytest.mark.parametrize(
    "value, allowed", [("auto", True), ("cpp", True), ("triton", False), ("readable", False)]
)
def test_the_standard_lstm_hands_torch_its_whole_stack_under_auto_and_cpp_only(
    monkeypatch, value, allowed
):
    monkeypatch.setenv("LSTMLAB_BACKEND", value)
    assert dispatch.torch_layer_allowed(torch.randn(2, 3)) is allowed
    with kernels.disabled():
        assert not dispatch.torch_layer_allowed(torch.randn(2, 3))


@pytest.mark.parametrize("value", ["cuda", "Triton2", "c++"])
def test_an_invalid_backend_is_a_value_error(monkeypatch, value):
    monkeypatch.setenv("LSTMLAB_BACKEND", value)
    layer, x, _ = case("gru")
    with pytest.raises(ValueError, match="LSTMLAB_BACKEND must be one of auto, cpp, triton"):
        layer(x)


def test_triton_on_the_cpu_without_the_interpreter_is_an_error(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET")
    layer, x, _ = case("rnn")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        layer(x)


def test_cpp_and_auto_run_the_cpp_kernels(monkeypatch, triton_calls):
    for value in ("cpp", "auto"):
        monkeypatch.setenv("LSTMLAB_BACKEND", value)
        layer, x, lengths = case("coupled")
        against_readable(layer, x, None, lengths, atol=1e-12)
    assert not triton_calls


def test_route_by_device(monkeypatch):
    """CUDA tensors (fake ones here: no GPU needed) go to Triton under auto and triton, and are
    an error under cpp."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        cuda = torch.empty(2, device="cuda")
    monkeypatch.setenv("LSTMLAB_BACKEND", "auto")
    assert backend.route(cuda) == ("triton" if backend.triton_installed() else "readable")
    assert backend.route(torch.empty(2)) == "cpp"
    monkeypatch.setenv("LSTMLAB_BACKEND", "cpp")
    with pytest.raises(RuntimeError, match="CPU tensors; got a CUDA tensor"):
        backend.route(cuda)
    monkeypatch.setenv("LSTMLAB_BACKEND", "triton")
    assert backend.route(cuda) == "triton"


@pytest.mark.parametrize(
    "name, family", [("ln-lstm", "LayerNormLSTMCell"), ("depth-gated", "DepthGatedLSTMCell")]
)
def test_a_family_without_triton_kernels_warns_and_runs_readable(name, family):
    backend.warn_once.cache_clear()
    layer, x, _ = case(name, size=(2, 3))
    with pytest.warns(RuntimeWarning, match=f"{family} has no Triton kernel"):
        fast = outputs_and_grads(layer, x, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        again = outputs_and_grads(layer, x, None)
    with kernels.disabled():
        slow = outputs_and_grads(layer, x, None)
    assert_all_close(fast, slow, atol=0.0)
    assert_all_close(again, slow, atol=0.0)


# --- the GPU benchmark ---------------------------------------------------------------------------


def test_gpu_benchmark_parses_its_arguments():
    run = [sys.executable, str(ROOT / "benchmarks" / "gpu.py")]
    shown = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "--quick" in shown.stdout
    if not torch.cuda.is_available():
        refused = subprocess.run([*run, "--quick"], capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0
        assert "CUDA" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
