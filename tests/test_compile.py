"""torch.compile(fullgraph=True) and torch.export for every layer family: no graph break, one
lstmlab operator node per layer and direction, and the same outputs and gradients as eager."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch.export import Dim

from lstmlab import GRU, LSTM, RNN, kernels
from lstmlab.nn.registry import VARIANTS, make_layer


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def layer_of(name: str, **kwargs):
    """Stacked and bidirectional where the family allows it."""
    if name.startswith("grid"):
        return make_layer(name, 3, 4, **kwargs)
    if name == "depth-gated":
        return make_layer(name, 3, 4, num_layers=2, **kwargs)
    return make_layer(name, 3, 4, num_layers=2, bidirectional=True, **kwargs)


def loss_and_grads(layer, fn, x, lengths):
    loss = fn(x, lengths)
    return [loss, *torch.autograd.grad(loss, [x, *layer.parameters()])]


def check_compiled(layer, x, lengths, backend, atol=1e-5, reference=contextlib.nullcontext):
    def fn(x, lengths):
        out, state = layer(x, lengths=lengths)
        parts = state if isinstance(state, tuple) else (state,)
        return out.square().sum() + sum(p.sum() for p in parts)

    compiled = torch.compile(fn, fullgraph=True, backend=backend)
    torch.manual_seed(1)
    got = loss_and_grads(layer, compiled, x, lengths)
    torch.manual_seed(1)
    with reference():
        expected = loss_and_grads(layer, fn, x, lengths)
    for k, (a, b) in enumerate(zip(got, expected)):
        torch.testing.assert_close(a, b, atol=atol, rtol=1e-5, msg=lambda m: f"result {k}: {m}")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_compile_fullgraph_inductor_equals_eager(name):
    torch.manual_seed(0)
    layer = layer_of(name)
    x = torch.randn(5, 3, 3, requires_grad=True)
    check_compiled(layer, x, torch.tensor([5, 3, 2]), "inductor")


REGULARISED = {
    "lstm-proj": lambda: LSTM(3, 4, num_layers=2, proj_size=2, dropout=0.3),
    "lstm-recurrent-dropout": lambda: LSTM(3, 4, recurrent_dropout=0.3, bidirectional=True),
    "peephole-zoneout": lambda: make_layer("peephole", 3, 4, zoneout=0.2),
    "gru-zoneout": lambda: GRU(3, 4, zoneout=0.2, recurrent_dropout=0.2),
    "rnn-dropout": lambda: RNN(3, 4, num_layers=2, dropout=0.3, recurrent_dropout=0.2),
    "ln-lstm-zoneout": lambda: LSTM(3, 4, layer_norm=True, zoneout=0.2),
    "ln-lstm-proj": lambda: LSTM(3, 4, layer_norm=True, proj_size=2),
    "depth-gated-zoneout": lambda: make_layer("depth-gated", 3, 4, num_layers=2, zoneout=0.2),
    "grid-dropout": lambda: make_layer("grid", 3, 4, num_layers=2, dropout=0.3),
    "clockwork-zoneout": lambda: make_layer("clockwork", 3, 4, zoneout=0.2),
}


@pytest.mark.parametrize("name", list(REGULARISED))
def test_compile_fullgraph_in_training_with_regularisers(name):
    """Masks come from torch's generator; the eager-graph backend draws them as eager does, so
    the same seed gives the same masks on both sides. The reference is the readable loop, which
    draws them in the same order (torch's LSTM kernel draws its inter-layer dropout itself)."""
    torch.manual_seed(0)
    layer = REGULARISED[name]().train()
    x = torch.randn(5, 3, 3, requires_grad=True)
    check_compiled(layer, x, torch.tensor([5, 4, 2]), "aot_eager", reference=kernels.disabled)


class Outputs(torch.nn.Module):
    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x, lengths):
        out, state = self.layer(x, lengths=lengths)
        return out, state


@pytest.mark.parametrize("strict", [False, True], ids=["non-strict", "strict"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_export_with_dynamic_batch_and_length(name, strict):
    torch.manual_seed(0)
    model = Outputs(layer_of(name)).eval()
    x, lengths = torch.randn(5, 3, 3), torch.tensor([5, 3, 2])
    batch = Dim("batch", min=1, max=1024)
    program = torch.export.export(
        model,
        (x, lengths),
        dynamic_shapes={"x": {0: Dim("steps", min=2, max=4096), 1: batch}, "lengths": {0: batch}},
        strict=strict,
    )
    nodes = {str(n.target) for n in program.graph.nodes}
    assert any(t.startswith("lstmlab.") for t in nodes)  # the layer is one operator node
    for steps, size in ((5, 3), (9, 4)):
        x2 = torch.randn(steps, size, 3)
        lengths2 = torch.randint(1, steps + 1, (size,))
        got, expected = program.module()(x2, lengths2), model(x2, lengths2)
        torch.testing.assert_close(got, expected)
