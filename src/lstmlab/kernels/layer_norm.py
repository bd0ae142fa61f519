"""The layer-normalised LSTM and GRU (Ba, Kiros & Hinton 2016) as fused sequence operations
(kernels: csrc/ln_lstm.h, csrc/ln_gru.h).

The input half of the pre-activations, ``LN(W_ih x_t; γ_ih) + b``, does not depend on the
recurrence, so it is computed here for all steps at once (torch ops, autograd); a kernel runs
the recurrence -- the recurrent half's layer norm, the gates, and for the LSTM the cell state's
layer norm -- and hands back that half's gradient. Both kernels take the regularisers
(recurrent dropout, zoneout); an LN-LSTM with a projection (``proj_size``) runs the readable
loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from lstmlab.kernels._build import compiled
from lstmlab.kernels._common import empty, readable_unless, regularizers, run_order, runs_here
from lstmlab.nn import dispatch
from lstmlab.nn.cells.layer_norm import LayerNormGRUCell, LayerNormLSTMCell


class _LNLSTMSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, w_hh, g_hh, g_c, b_c, h0, c0, lengths, eps, rec_mask, keep_h, keep_c):
        hs, cs, acts, n_hh, rs_hh, n_c, rs_c = compiled().ln_lstm_forward(
            a, w_hh, g_hh, g_c, b_c, h0, c0, lengths, eps, rec_mask, keep_h, keep_c
        )
        ctx.save_for_backward(
            w_hh,
            g_hh,
            g_c,
            b_c,
            hs,
            cs,
            acts,
            n_hh,
            rs_hh,
            n_c,
            rs_c,
            lengths,
            rec_mask,
            keep_h,
            keep_c,
        )
        return hs, cs[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_hs, d_cn):
        (
            w_hh,
            g_hh,
            g_c,
            b_c,
            hs,
            cs,
            acts,
            n_hh,
            rs_hh,
            n_c,
            rs_c,
            lengths,
            rec_mask,
            keep_h,
            keep_c,
        ) = ctx.saved_tensors
        da, dw_hh, dg_hh, dg_c, db_c, dh0, dc0 = compiled().ln_lstm_backward(
            d_hs.contiguous(),
            d_cn.contiguous(),
            w_hh,
            g_hh,
            g_c,
            b_c,
            hs,
            cs,
            acts,
            n_hh,
            rs_hh,
            n_c,
            rs_c,
            lengths,
            rec_mask,
            keep_h,
            keep_c,
        )
        return (
            da,
            dw_hh,
            dg_hh,
            dg_c,
            db_c if b_c.numel() else None,
            dh0,
            dc0,
            None,
            None,
            None,
            None,
            None,
        )


@readable_unless(
    lambda cell, reverse: cell.weight_hr is None,  # no projection in the kernel
    regularized=True,
)
def ln_lstm_sequence(
    cell: LayerNormLSTMCell,
    x: Tensor,
    state: tuple[Tensor, ...],
    lengths: Tensor | None,
    reverse: bool,
    *,
    recurrent_mask: Tensor | None = None,
    zoneout: Sequence[Tensor] = (),
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run a layer-normalised LSTM cell over ``x`` (T, B, I) like :func:`lstmlab.nn.recurrent.run`
    (no gates), with its recurrent dropout mask (B, H) and zoneout keep weights for h and c
    (each (T, B, H)); with a projection, through that readable loop itself."""
    x = run_order(x, lengths, reverse)
    none = empty(x)
    rec_mask, (keep_h, keep_c) = regularizers(recurrent_mask, zoneout, 2, lengths, reverse, none)
    a = cell.ln_ih(F.linear(x, cell.weight_ih))  # (T, B, 4H)
    if cell.bias_ih is not None:
        a = a + cell.bias_ih + cell.bias_hh
    b_c = cell.ln_c.bias if cell.ln_c.bias is not None else none
    hs, c_n = _LNLSTMSequence.apply(
        a.contiguous(),
        cell.weight_hh,
        cell.ln_hh.weight,
        cell.ln_c.weight,
        b_c,
        state[0].contiguous(),
        state[1].contiguous(),
        none.long() if lengths is None else lengths,
        cell.ln_hh.eps,
        rec_mask,
        keep_h,
        keep_c,
    )
    return run_order(hs[1:], lengths, reverse), (hs[-1], c_n)


class _LNGRUSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, w_hh, g_hh, b_hh, h0, lengths, eps, rec_mask, keep_h):
        hs, acts, n_hh, rs_hh = compiled().ln_gru_forward(
            a, w_hh, g_hh, b_hh, h0, lengths, eps, rec_mask, keep_h
        )
        ctx.save_for_backward(w_hh, g_hh, b_hh, hs, acts, n_hh, rs_hh, lengths, rec_mask, keep_h)
        return hs

    @staticmethod
    @once_differentiable
    def backward(ctx, d_hs):
        w_hh, g_hh, b_hh, hs, acts, n_hh, rs_hh, lengths, rec_mask, keep_h = ctx.saved_tensors
        da, dw_hh, dg_hh, db_hh, dh0 = compiled().ln_gru_backward(
            d_hs.contiguous(), w_hh, g_hh, b_hh, hs, acts, n_hh, rs_hh, lengths, rec_mask, keep_h
        )
        return (da, dw_hh, dg_hh, db_hh if b_hh.numel() else None, dh0, None, None, None, None)


def ln_gru_sequence(
    cell: LayerNormGRUCell,
    x: Tensor,
    state: tuple[Tensor, ...],
    lengths: Tensor | None,
    reverse: bool,
    *,
    recurrent_mask: Tensor | None = None,
    zoneout: Sequence[Tensor] = (),
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run a layer-normalised GRU cell over ``x`` (T, B, I) like :func:`lstmlab.nn.recurrent.run`
    (no gates), with its recurrent dropout mask (B, H) and zoneout keep weights (T, B, H)."""
    x = run_order(x, lengths, reverse)
    none = empty(x)
    rec_mask, (keep_h,) = regularizers(recurrent_mask, zoneout, 1, lengths, reverse, none)
    a = cell.ln_ih(F.linear(x, cell.weight_ih))  # (T, B, 3H)
    if cell.bias_ih is not None:
        a = a + cell.bias_ih
    hs = _LNGRUSequence.apply(
        a.contiguous(),
        cell.weight_hh,
        cell.ln_hh.weight,
        none if cell.bias_hh is None else cell.bias_hh,
        state[0].contiguous(),
        none.long() if lengths is None else lengths,
        cell.ln_hh.eps,
        rec_mask,
        keep_h,
    )
    return run_order(hs[1:], lengths, reverse), (hs[-1],)


dispatch.register_sequence_op(LayerNormLSTMCell, ln_lstm_sequence, accepts=runs_here)
dispatch.register_sequence_op(LayerNormGRUCell, ln_gru_sequence, accepts=runs_here)
