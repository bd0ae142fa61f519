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

from lstmlab.kernels._build import compiled
from lstmlab.kernels._common import (
    empty,
    first_derivative_only,
    readable_unless,
    runs_here,
    zero_padding,
)
from lstmlab.nn import dispatch
from lstmlab.nn.cells.grid import GridLSTMCell, GridLSTMColumn


class _GridSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, d, w, bias, h0, m0, lengths):
        ys, hs, ms, inp, md, acts = compiled().grid_forward(d, w, bias, h0, m0, lengths)
        ctx.save_for_backward(w, ms, inp, md, acts, lengths)
        ctx.has_bias = bias.numel() > 0
        return ys, hs[-1].clone(), ms[-1].clone()

    @staticmethod
    @first_derivative_only
    def backward(ctx, d_ys, d_hn, d_mn):
        w, ms, inp, md, acts, lengths = ctx.saved_tensors
        dd, dw, dbias, dh0, dm0 = compiled().grid_backward(
            d_ys.contiguous(),
            d_hn.contiguous(),
            d_mn.contiguous(),
            w,
            ctx.has_bias,
            ms,
            inp,
            md,
            acts,
            lengths,
        )
        return dd, dw, dbias if ctx.has_bias else None, dh0, dm0, None


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
    ys, h_n, m_n = _GridSequence.apply(
        d.contiguous(),
        w,
        bias,
        state[0].contiguous(),
        state[1].contiguous(),
        none.long() if lengths is None else lengths,
    )
    return zero_padding(ys, lengths), (h_n, m_n)


dispatch.register_sequence_op(GridLSTMColumn, grid_sequence, accepts=runs_here)
