"""Second derivatives (gradient penalties, Hessians, MAML) are right, never silently zero: the
readable loop is differentiable any number of times, and a layer on its fused kernels takes its
second derivative through that loop; an operator reached directly refuses one."""

from __future__ import annotations

import pytest
import torch

from lstmlab import kernels
from lstmlab.nn.registry import VARIANTS, make_layer


def layer_and_input(name: str):
    torch.manual_seed(0)
    layer = make_layer(name, 2, 3).double()
    return layer, torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_readable_loop_has_correct_second_derivatives(name):
    layer, x = layer_and_input(name)
    with kernels.disabled():
        assert torch.autograd.gradgradcheck(lambda x: layer(x)[0], (x,))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_default_path_has_correct_second_derivatives(name):
    """The fused path: first derivatives from the kernels, second ones through the readable
    loop (gradgradcheck differentiates the backward itself)."""
    layer, x = layer_and_input(name)
    assert torch.autograd.gradgradcheck(lambda x: layer(x)[0], (x,))


@pytest.mark.parametrize("name", ["lstm", "peephole", "fgr", "gru", "rnn", "ln-lstm"])
def test_second_derivatives_with_lengths_directions_and_parameters(name):
    torch.manual_seed(0)
    layer = make_layer(name, 2, 3, num_layers=2, bidirectional=True, zoneout=0.2).double()
    x = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 2, 3])

    def penalty():  # a gradient penalty, as in WGAN-GP: d/dθ |d out / d x|^2
        torch.manual_seed(1)  # the same zoneout masks on both paths
        (g,) = torch.autograd.grad(layer(x, lengths=lengths)[0].sum(), x, create_graph=True)
        return torch.autograd.grad((g**2).sum(), [x, *layer.parameters()])

    got = penalty()
    with kernels.disabled():
        expected = penalty()
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8)


def test_an_operator_reached_directly_refuses_a_second_derivative():
    """Below the layers (where nothing reruns the readable loop), an operator's backward says
    it gives first derivatives only instead of returning a graph-less gradient."""
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    w_ih = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    w_hh = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    none = x.new_empty(0)
    h0 = torch.zeros(2, 3, dtype=torch.float64)
    hs, _ = torch.ops.lstmlab.rnn_forward(x, w_ih, none, w_hh, h0, none.long(), False, none, none)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.grad(hs.sum(), x, create_graph=True)
