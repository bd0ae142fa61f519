"""Second derivatives (gradient penalties, Hessians, MAML) are right or refused, never silently
zero: the readable loop is differentiable any number of times, a fused kernel's backward gives
first derivatives only and says so when asked for a graph."""

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
def test_default_path_gives_the_readable_second_derivative_or_refuses(name):
    layer, x = layer_and_input(name)

    def penalty() -> torch.Tensor:
        (g,) = torch.autograd.grad(layer(x)[0].sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad((g**2).sum(), x)
        return gg

    with kernels.disabled():
        expected = penalty()
    try:
        got = penalty()
    except RuntimeError as error:
        assert "kernels.disabled()" in str(error)
    else:  # a path with second derivatives: they must be right
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-8)
