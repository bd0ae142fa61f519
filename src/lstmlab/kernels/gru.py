"""The GRU as a fused sequence operation (kernels: csrc/gru.h)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lstmlab.kernels._build import compiled
from lstmlab.kernels._common import empty, first_derivative_only, regularizers, run_order, runs_here
from lstmlab.nn import dispatch
from lstmlab.nn.cells.gru import GRUCell


class _GRUSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w_ih, b_ih, w_hh, b_hh, h0, lengths, reset_after, rec_mask, keep_h):
        hs, acts, aux = compiled().gru_forward(
            x, w_ih, b_ih, w_hh, b_hh, h0, lengths, reset_after, rec_mask, keep_h
        )
        ctx.save_for_backward(x, w_ih, w_hh, hs, acts, aux, lengths, rec_mask, keep_h)
        ctx.reset_after, ctx.has_bias = reset_after, b_ih.numel() > 0
        return hs

    @staticmethod
    @first_derivative_only
    def backward(ctx, d_hs):
        x, w_ih, w_hh, hs, acts, aux, lengths, rec_mask, keep_h = ctx.saved_tensors
        dx, dw_ih, db_ih, dw_hh, db_hh, dh0 = compiled().gru_backward(
            d_hs.contiguous(),
            x,
            w_ih,
            w_hh,
            ctx.has_bias,
            hs,
            acts,
            aux,
            lengths,
            ctx.reset_after,
            rec_mask,
            keep_h,
        )
        if not ctx.has_bias:
            db_ih = db_hh = None
        return dx, dw_ih, db_ih, dw_hh, db_hh, dh0, None, None, None, None


def gru_sequence(
    cell: GRUCell,
    x: Tensor,
    state: tuple[Tensor, ...],
    lengths: Tensor | None,
    reverse: bool,
    *,
    recurrent_mask: Tensor | None = None,
    zoneout: Sequence[Tensor] = (),
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run a GRU cell over ``x`` (T, B, I) like :func:`lstmlab.nn.recurrent.run` (no gates), with
    its recurrent dropout mask (B, H) and zoneout keep weights for h (T, B, H)."""
    x = run_order(x, lengths, reverse)
    none = empty(x)
    rec_mask, (keep_h,) = regularizers(recurrent_mask, zoneout, 1, lengths, reverse, none)
    hs = _GRUSequence.apply(
        x.contiguous(),
        cell.weight_ih,
        none if cell.bias_ih is None else cell.bias_ih,
        cell.weight_hh,
        none if cell.bias_hh is None else cell.bias_hh,
        state[0].contiguous(),
        none.long() if lengths is None else lengths,
        cell.reset_after,
        rec_mask,
        keep_h,
    )
    out = run_order(hs[1:], lengths, reverse)
    return out, (hs[-1],)


dispatch.register_sequence_op(GRUCell, gru_sequence, accepts=runs_here)
