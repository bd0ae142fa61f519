"""The 2-D Grid LSTM column (Kalchbrenner et al. 2015) as one fused sequence operation (kernels:
csrc/grid.h).

The input projection ``W_in x_t`` does not depend on the recurrence and is computed here for
all steps at once (autograd); the kernel runs every block of the column at every step, the time
pairs through time and the depth pair up the column. A training column with dropout between
its blocks, or a regulariser of the Stack kind, runs the readable loop instead.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmlab.kernels._common import (
    cpp_only,
    empty,
    first_derivative_only,
    fused_sequence_op,
    grad_or_zeros,
    kernel_op,
    readable_unless,
    tensors,
    zero_padding,
)
from lstmlab.nn import dispatch
from lstmlab.nn.cells.grid import GridLSTMCell, GridLSTMColumn


def _forward_shapes(d, w, bias, h0, m0, lengths):
    """The column's output (T, B, H); hs, ms (T+1, B, L·H); each block's input pair
    (T, L, B, 2H); the depth memories (T, L+1, B, H); the gate activations (T, L, B, 8H)."""
    t, b, h = d.shape
    n = w.shape[0]
    new = d.new_empty
    return (
        new(t, b, h),
        new(t + 1, b, n * h),
        new(t + 1, b, n * h),
        new(t, n, b, 2 * h),
        new(t, n + 1, b, h),
        new(t, n, b, 8 * h),
    )


def _backward_shapes(d_ys, d_hn, d_mn, w, has_bias, ms, inp, md, acts, lengths):
    like = torch.empty_like
    bias = w.new_empty(w.shape[:2]) if has_bias else w.new_empty(0)
    return like(d_ys), like(w), bias, like(ms[0]), like(ms[0])


grid_forward = kernel_op(
    "grid_forward",
    f"(Tensor d, Tensor w, Tensor bias, Tensor h0, Tensor m0, Tensor lengths) -> {tensors(6)}",
    _forward_shapes,
)
grid_backward = kernel_op(
    "grid_backward",
    "(Tensor grad_ys, Tensor grad_hn, Tensor grad_mn, Tensor w, bool has_bias, Tensor ms, "
    f"Tensor inp, Tensor md, Tensor acts, Tensor lengths) -> {tensors(5)}",
    _backward_shapes,
)


def _save(ctx, inputs, output):
    _, w, bias, _, _, lengths = inputs
    _, hs, ms, inp, md, acts = output
    ctx.save_for_backward(w, hs, ms, inp, md, acts, lengths)
    ctx.has_bias = bias.numel() > 0


def _backward(ctx, d_ys, d_hs, d_ms, *unused):
    first_derivative_only()
    w, hs, ms, inp, md, acts, lengths = ctx.saved_tensors
    dd, dw, dbias, dh0, dm0 = grid_backward(
        grad_or_zeros(d_ys, md[:, 0]),  # (T, B, H)
        grad_or_zeros(d_hs, hs)[-1],
        grad_or_zeros(d_ms, ms)[-1],
        w,
        ctx.has_bias,
        ms,
        inp,
        md,
        acts,
        lengths,
    )
    return dd, dw, dbias if ctx.has_bias else None, dh0, dm0, None


grid_forward.register_autograd(_backward, setup_context=_save)


def _fused_can(cell: GridLSTMColumn, reverse: bool) -> bool:
    """The kernel runs forward in time and has no dropout between blocks."""
    return not reverse and not (cell.dropout > 0 and cell.training and cell.num_layers > 1)


@readable_unless(_fused_can)
def grid_sequence(
    cell: GridLSTMColumn,
    x: Tensor,
    state: tuple[Tensor, ...],
    lengths: Tensor | None,
    reverse: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run a Grid LSTM column over ``x`` (T, B, I) like :func:`lstmlab.nn.recurrent.run` (no
    gates); the state is ``(h, m)``, each (B, L·H)."""
    x = zero_padding(x, lengths)
    d = F.linear(x, cell.weight_ih)  # (T, B, H)
    # nn.ModuleList is not generic in torch's stubs: its items are the column's GridLSTMCells.
    blocks = [
        cast(GridLSTMCell, cell.blocks[0 if cell.tied else l]) for l in range(cell.num_layers)
    ]
    w = torch.stack([b.weight for b in blocks])  # (L, 8H, 2H); tied: L copies
    none = empty(x)
    biases: list[Tensor] = [b.bias for b in blocks if b.bias is not None]  # all or none
    bias = torch.stack(biases) if biases else none  # (L, 8H)
    ys, hs, ms, *_ = grid_forward(
        d.contiguous(),
        w,
        bias,
        state[0].contiguous(),
        state[1].contiguous(),
        none.long() if lengths is None else lengths,
    )
    return zero_padding(ys, lengths), (hs[-1], ms[-1])


dispatch.register_sequence_op(
    GridLSTMColumn, fused_sequence_op(grid_sequence), accepts=cpp_only("GridLSTMColumn")
)
