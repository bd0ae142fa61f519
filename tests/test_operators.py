"""The fused kernels as torch.library operators: schemas, fake kernels and autograd checked by
torch.library.opcheck; meta tensors; torch.func; parametrizations; bfloat16 and autocast; and
dynamic int8 quantization."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.func import functional_call, grad, jacrev, stack_module_state, vmap
from torch.utils._python_dispatch import TorchDispatchMode

import lstmlab
from lstmlab import GRU, LSTM, GRUCell, LSTMCell, kernels
from lstmlab.nn.registry import VARIANTS, make_layer


def layer_of(name: str, **kwargs):
    """Two layers and bidirectional where the family allows it."""
    if name.startswith("grid"):
        return make_layer(name, 3, 4, **kwargs)
    if name == "depth-gated":
        return make_layer(name, 3, 4, num_layers=2, **kwargs)
    return make_layer(name, 3, 4, num_layers=2, bidirectional=True, **kwargs)


class Recorder(TorchDispatchMode):
    """Every call of an lstmlab operator, with its arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[torch._ops.OpOverload, tuple]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == "lstmlab":
            self.calls.append((func, args))
        return func(*args, **(kwargs or {}))


def run_forward_and_backward(layer, x, lengths=None):
    out, _ = layer(x, lengths=lengths)
    out.square().sum().backward()


CONFIGS = {
    "lstm-lengths": lambda: (LSTM(3, 4, bidirectional=True), {"lengths": [5, 2]}),
    "peephole": lambda: (LSTM(3, 4, peephole=True), {}),
    "coupled": lambda: (LSTM(3, 4, coupled=True), {}),
    "nig-noaf": lambda: (LSTM(3, 4, input_gate=False, output_activation=False), {}),
    "fgr": lambda: (LSTM(3, 4, gate_recurrence=True), {}),
    "proj": lambda: (LSTM(3, 4, proj_size=2, peephole=True), {}),
    "lstm-regularised": lambda: (LSTM(3, 4, recurrent_dropout=0.3, zoneout=0.2), {}),
    "gru": lambda: (GRU(3, 4, bidirectional=True), {"lengths": [5, 3]}),
    "gru-v3-zoneout": lambda: (GRU(3, 4, reset_after=False, zoneout=0.2), {}),
    "rnn-relu": lambda: (lstmlab.RNN(3, 4, nonlinearity="relu", recurrent_dropout=0.2), {}),
    "ln-lstm": lambda: (LSTM(3, 4, layer_norm=True, zoneout=0.1), {"lengths": [5, 4]}),
    "ln-gru": lambda: (GRU(3, 4, layer_norm=True), {"lengths": [5, 2]}),
    "rnn-lengths": lambda: (lstmlab.RNN(3, 4, bidirectional=True), {"lengths": [5, 1]}),
    "gru-v3-lengths": lambda: (GRU(3, 4, reset_after=False), {"lengths": [5, 2]}),
    "fgr-lengths": lambda: (LSTM(3, 4, gate_recurrence=True), {"lengths": [5, 3]}),
    "depth-gated": lambda: (make_layer("depth-gated", 3, 4, num_layers=2), {}),
    "depth-gated-lengths": lambda: (
        make_layer("depth-gated", 3, 4, num_layers=2),
        {"lengths": [5, 2]},
    ),
    "grid": lambda: (make_layer("grid", 3, 4, num_layers=2), {"lengths": [5, 3]}),
    "clockwork": lambda: (make_layer("clockwork", 3, 4), {}),
    "slstm": lambda: (
        make_layer("slstm", 3, 4, num_heads=2, bidirectional=True),
        {"lengths": [5, 3]},
    ),
}

# Arguments that carry no gradient: masks, lengths, and what only the backward reads.
_NOT_DIFFERENTIABLE = ("rec_mask", "keep", "lengths", "layout")


def recorded_calls():
    """(config, op, args) for each lstmlab operator each configuration reaches, the generation
    steps included."""
    calls = []
    for config, build in CONFIGS.items():
        torch.manual_seed(0)
        layer, kwargs = build()
        layer.train()
        with Recorder() as rec:
            run_forward_and_backward(layer, torch.randn(5, 2, 3), **kwargs)
        seen = set()
        for op, args in rec.calls:
            if op.name() not in seen:
                seen.add(op.name())
                calls.append((config, op, args))
    for cell in (LSTMCell(3, 4, peephole=True), GRUCell(3, 4)):
        with Recorder() as rec, torch.no_grad():
            cell(torch.randn(2, 3))
        calls += [(type(cell).__name__, op, args) for op, args in rec.calls]
    return calls


CALLS = recorded_calls()


def test_every_fused_operator_is_reached():
    reached = {op.name() for _, op, _ in CALLS}
    for family in ("lstm", "gru", "rnn", "ln_lstm", "ln_gru", "depth_gated", "grid", "slstm"):
        assert {f"lstmlab::{family}_forward", f"lstmlab::{family}_backward"} <= reached
    assert {"lstmlab::lstm_step", "lstmlab::gru_step"} <= reached


@pytest.mark.parametrize(
    "config, op, args", CALLS, ids=[f"{c}-{op.name().split('::')[1]}" for c, op, _ in CALLS]
)
def test_opcheck(config, op, args):
    names = [a.name for a in op._schema.arguments]
    differentiable = not op.name().endswith(("_backward", "_step"))

    def fresh(name, value):
        if not isinstance(value, torch.Tensor):
            return value
        value = value.detach().clone()
        wants = (
            differentiable
            and value.is_floating_point()
            and value.numel() > 0
            and not name.startswith(_NOT_DIFFERENTIABLE)
        )
        return value.requires_grad_(wants)

    torch.library.opcheck(op, tuple(fresh(n, a) for n, a in zip(names, args)))


def _poison_freed_memory() -> None:
    """Leave NaN in memory the allocator hands out next, so an output the kernel never writes
    shows up as different values from one call to the next."""
    for n in (64, 1024, 65536):
        torch.full((n,), float("nan")).sum()


@pytest.mark.parametrize(
    "config, op, args", CALLS, ids=[f"{c}-{op.name().split('::')[1]}" for c, op, _ in CALLS]
)
def test_every_output_is_written(config, op, args):
    # Steps past a sequence's length included: compile and export compare outputs bit for bit.
    _poison_freed_memory()
    first = op(*args)
    _poison_freed_memory()
    second = op(*args)
    first, second = (r if isinstance(r, tuple) else (r,) for r in (first, second))
    for k, (a, b) in enumerate(zip(first, second)):
        assert torch.equal(a, b), f"{op.name()} output {k} differs between two calls"


@pytest.mark.parametrize("name", list(VARIANTS))
def test_meta_tensors_give_the_shapes(name):
    torch.manual_seed(0)
    layer = layer_of(name)
    x, lengths = torch.randn(5, 3, 3), torch.tensor([5, 3, 2])
    out, state = layer(x, lengths=lengths)
    meta_out, meta_state = layer.to("meta")(x.to("meta"), lengths=lengths)
    assert meta_out.device.type == "meta" and meta_out.shape == out.shape
    parts = state if isinstance(state, tuple) else (state,)
    meta_parts = meta_state if isinstance(meta_state, tuple) else (meta_state,)
    assert [p.shape for p in meta_parts] == [p.shape for p in parts]


@pytest.mark.parametrize("name", ["lstm", "peephole", "gru", "rnn", "ln-lstm", "clockwork"])
def test_torch_func_grad_vmap_and_jacrev(name):
    torch.manual_seed(0)
    layer = make_layer(name, 3, 4).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    params = dict(layer.named_parameters())

    def loss(p, x):
        return functional_call(layer, p, (x,))[0].square().sum()

    got = grad(loss)(params, x)
    expected = torch.autograd.grad(loss(params, x), list(params.values()))
    for key, e in zip(params, expected):
        torch.testing.assert_close(got[key], e)
    # vmap over three parameter sets (model ensembling)
    models = [make_layer(name, 3, 4).double() for _ in range(3)]
    stacked, _ = stack_module_state(models)
    outs = vmap(lambda p, x: functional_call(layer, p, (x,))[0], in_dims=(0, None))(stacked, x)
    for k, model in enumerate(models):
        torch.testing.assert_close(outs[k], model(x)[0])
    # jacrev of the output with respect to the input
    jac = jacrev(lambda x: layer(x)[0].sum(0))(x)
    with kernels.disabled():
        expected_jac = torch.autograd.functional.jacobian(lambda x: layer(x)[0].sum(0), x)
    torch.testing.assert_close(jac, expected_jac)


@pytest.mark.parametrize("name", ["lstm", "peephole", "gru", "ln-lstm"])
@pytest.mark.parametrize("kind", ["weight_norm", "spectral_norm"])
def test_parametrizations_on_any_weight(name, kind):
    torch.manual_seed(0)
    layer = make_layer(name, 3, 4, num_layers=2).double()
    parametrize = getattr(torch.nn.utils.parametrizations, kind)
    for weight in ("weight_hh_l0", "weight_ih_l1"):
        parametrize(layer, weight)
    layer.eval()  # spectral_norm's power iteration runs in training only: the same weights
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    out, _ = layer(x)
    out.square().sum().backward()
    originals = [p for n, p in layer.named_parameters() if "original" in n]
    assert originals and all(p.grad is not None for p in originals)
    grads = [p.grad.clone() for p in originals]
    for p in originals:
        p.grad = None
    with kernels.disabled():
        expected, _ = layer(x)
        expected.square().sum().backward()
    torch.testing.assert_close(out, expected)
    for g, p in zip(grads, originals):
        torch.testing.assert_close(g, p.grad)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_bfloat16_and_autocast_run_fused_in_float32(name):
    torch.manual_seed(0)
    layer = layer_of(name)
    x = torch.randn(6, 3, 3)
    expected = layer(x)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_out = layer(x)[0]
    assert autocast_out.dtype == torch.bfloat16
    torch.testing.assert_close(autocast_out.float(), expected, atol=2e-2, rtol=2e-2)
    half = layer_of(name)
    half.load_state_dict(layer.state_dict())
    half = half.bfloat16()
    xb = x.bfloat16().requires_grad_()
    out = half(xb)[0]
    out.float().square().sum().backward()
    assert out.dtype == xb.grad.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, atol=3e-2, rtol=3e-2)
    if name != "lstm":  # the standard LSTM's bfloat16 runs on torch's own kernel
        with Recorder() as rec:
            half(xb)
        assert rec.calls  # the fused operators ran, not the readable loop


def test_quantize_dynamic_gives_torch_int8_modules_and_warns_for_the_rest():
    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.gru = LSTM(4, 8, 2), GRU(8, 8, bidirectional=True)
            self.peephole = LSTM(16, 8, peephole=True)

        def forward(self, x):
            return self.peephole(self.gru(self.lstm(x)[0])[0])[0]

    torch.manual_seed(0)
    model, x = Model().eval(), torch.randn(5, 3, 4)
    expected = model(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantized = torch.ao.quantization.quantize_dynamic(model, {LSTM, GRU}, dtype=torch.qint8)
    assert isinstance(quantized.lstm, torch.ao.nn.quantized.dynamic.LSTM)
    assert isinstance(quantized.gru, torch.ao.nn.quantized.dynamic.GRU)
    assert type(quantized.peephole) is LSTM  # no int8 kernel for a variant: kept, and said
    assert any("stays in float" in str(w.message) for w in caught)
    torch.testing.assert_close(quantized(x), expected, atol=2e-2, rtol=0)


def test_opcheck_onednn_lstm_operators():
    """The standard LSTM's oneDNN layer as operators (what a compiled standard LSTM runs)."""
    torch.manual_seed(0)
    cell = LSTMCell(3, 4)
    x, h0, c0 = torch.randn(5, 2, 3), torch.randn(2, 4), torch.randn(2, 4)
    params = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
    args = [t.detach().clone().requires_grad_() for t in (x, *params, h0, c0)]
    # oneDNN's workspace (an output) holds padding bytes that differ from run to run, so the
    # eager-vs-AOT comparison of outputs is left to tests/test_compile.py (outputs and gradients
    # of the compiled standard LSTM against eager).
    checks = ("test_schema", "test_autograd_registration", "test_faketensor")
    torch.library.opcheck(
        torch.ops.lstmlab.onednn_lstm_forward.default, tuple(args), test_utils=checks
    )
    plain = [t.detach() for t in args]
    out, h_n, c_n, workspace = torch.ops.lstmlab.onednn_lstm_forward(*plain)
    grads = (torch.randn_like(out), torch.randn_like(h_n), torch.randn_like(c_n))
    backward_args = (*plain, out, h_n, c_n, *grads, workspace)
    torch.library.opcheck(torch.ops.lstmlab.onednn_lstm_backward.default, backward_args)
    # against torch.nn.LSTM with the same weights
    reference = torch.nn.LSTM(3, 4)
    reference.load_state_dict(
        {f"{k}_l0": v for k, v in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), params)}
    )
    expected, (h, c) = reference(x, (h0[None], c0[None]))
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(c_n, c[0])
