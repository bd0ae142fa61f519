"""The fused kernels read raw row-major memory: every fused sequence op and one-step route must
give the readable loop's results for transposed, sliced and expanded weights, inputs and states."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lstmlab import ClockworkRNN, GridLSTM, kernels
from lstmlab.nn.registry import VARIANTS, make_layer
from test_fused import check_against_readable

STEP_CELLS = [
    "lstm",
    "peephole",
    "coupled",
    "nig",
    "nfg",
    "nog",
    "niaf",
    "noaf",
    "fgr",
    "gru",
    "gru-v3",
    "rnn",
]


def strided(t: torch.Tensor, how: str) -> torch.Tensor:
    """The same shape in a non-dense layout: ``transposed`` (column-major, same values),
    ``sliced`` (every other element of a wider buffer, same values) or ``expanded`` (the first
    column -- of a vector, element -- repeated with stride 0: other values, the same on every
    path; columns rather than rows, so layer norms still see distinct pre-activations)."""
    t = t.detach()
    if how == "transposed" and t.dim() == 2:
        out = t.t().contiguous().t()
    elif how == "expanded" and t.dim() >= 1 and t.shape[-1] > 1:
        out = t[..., :1].expand_as(t)
    else:  # sliced, and the 1-D transposed case
        out = torch.zeros(*t.shape, 2, dtype=t.dtype)[..., 0]
        out.copy_(t)
    assert not out.is_contiguous() or t.numel() <= 1
    return out


def restride(layer: nn.Module, how: str) -> None:
    for name, p in list(layer.named_parameters()):
        owner, _, leaf = name.rpartition(".")
        layer.get_submodule(owner)._parameters[leaf] = nn.Parameter(strided(p, how))


def case(name: str, how: str, dtype: torch.dtype):
    torch.manual_seed(3)
    one_way = name in ("depth-gated", "grid", "grid-tied")
    layer = make_layer(name, 3, 4, num_layers=2, bidirectional=not one_way).to(dtype)
    restride(layer, how)
    T, B = 5, 3
    x = strided(torch.randn(T, B, 3, dtype=dtype), how).requires_grad_()
    sizes = layer.state_sizes if isinstance(layer, GridLSTM) else layer.cells[0].state_sizes
    count = 2 * layer.num_directions
    parts = [torch.randn(count, 1, n, dtype=dtype).expand(count, B, n) for n in sizes]
    if isinstance(layer, ClockworkRNN):  # the clock holds whole steps
        parts[1] = torch.randint(0, 9, parts[1].shape).to(dtype)
    parts = [p.clone().requires_grad_() if how != "expanded" else p.requires_grad_() for p in parts]
    hx = parts[0] if len(parts) == 1 else tuple(parts)
    return layer, x, hx, torch.tensor([5, 2, 4])


@pytest.mark.parametrize("how", ["transposed", "sliced", "expanded"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_sequence_ops_take_any_strides(name, how):
    check_against_readable(*case(name, how, torch.float64), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("how", ["transposed", "sliced", "expanded"])
@pytest.mark.parametrize("name", STEP_CELLS)
def test_cell_steps_take_any_strides(name, how, grad):
    torch.manual_seed(4)
    cell = make_layer(name, 5, 3).cells[0]
    restride(cell, how)
    x = strided(torch.randn(2, 5), how)
    state = tuple(strided(torch.randn(2, n), how) for n in cell.state_sizes)
    hx = state[0] if len(state) == 1 else state
    with torch.set_grad_enabled(grad):
        fast = cell(x, hx)
        with kernels.disabled():
            slow = cell(x, hx)
    fast = (fast,) if isinstance(fast, torch.Tensor) else fast
    slow = (slow,) if isinstance(slow, torch.Tensor) else slow
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
