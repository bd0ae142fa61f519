"""The layer-normalised LSTM and GRU (Ba, Kiros & Hinton 2016) as fused sequence operations
(kernels: csrc/ln_lstm.h, csrc/ln_gru.h).

The input half of the pre-activations, ``LN(W_ih x_t; γ_ih) + b``, does not depend on the
recurrence, so it is computed for all steps at once (one GEMM; for the GRU with torch ops and
autograd, for the LSTM inside its autograd Function, which rebuilds W_ih x in the backward
rather than keep it); a kernel runs the recurrence -- the recurrent half's layer norm, the
gates, and for the LSTM the cell state's layer norm -- and hands back that half's gradient.
Both kernels take the regularisers (recurrent dropout, zoneout); an LN-LSTM with a projection
(``proj_size``) runs the readable loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmlab.kernels._build import compiled
from lstmlab.kernels._common import (
    empty,
    first_derivative_only,
    readable_unless,
    regularizers,
    run_order,
    runs_here,
)
from lstmlab.nn import dispatch
from lstmlab.nn.cells.layer_norm import LayerNormGRUCell, LayerNormLSTMCell


class _LNLSTMSequence(torch.autograd.Function):
    """The whole LN-LSTM layer over a sequence: input half, recurrence and their backward.

    Saved for the backward: x (the caller's), hs, cs (T+1, B, H), the gate activations
    (T, B, 4H), n(c_t) (T, B, H) and the three norms' 1/std (T, B). W_ih x and the recurrent
    half's W_hh h (each (T, B, 4H)) are rebuilt in the backward, one GEMM each for all steps,
    rather than kept: at B32 T512 H512 each is 128 MiB."""

    @staticmethod
    def forward(
        ctx,
        x,
        w_ih,
        g_ih,
        bias,
        w_hh,
        g_hh,
        g_c,
        b_c,
        h0,
        c0,
        lengths,
        eps_ih,
        eps,
        rec_mask,
        keep_h,
        keep_c,
    ):
        ext = compiled()
        t, b = x.shape[:2]
        a = F.linear(x, w_ih)  # (T, B, 4H); becomes LN(W_ih x; γ_ih) + b in place
        rs_ih = ext.ln_rows_forward(a.view(t * b, -1), g_ih, bias, eps_ih)
        hs, cs, acts, rs_hh, n_c, rs_c = ext.ln_lstm_forward(
            a, w_hh, g_hh, g_c, b_c, h0, c0, lengths, eps, rec_mask, keep_h, keep_c
        )
        del a
        ctx.save_for_backward(
            x,
            w_ih,
            g_ih,
            rs_ih,
            w_hh,
            g_hh,
            g_c,
            b_c,
            hs,
            cs,
            acts,
            rs_hh,
            n_c,
            rs_c,
            lengths,
            rec_mask,
            keep_h,
            keep_c,
        )
        ctx.has_bias = bias.numel() > 0
        return hs, cs[-1].clone()

    @staticmethod
    @first_derivative_only
    def backward(ctx, d_hs, d_cn):
        (
            x,
            w_ih,
            g_ih,
            rs_ih,
            w_hh,
            g_hh,
            g_c,
            b_c,
            hs,
            cs,
            acts,
            rs_hh,
            n_c,
            rs_c,
            lengths,
            rec_mask,
            keep_h,
            keep_c,
        ) = ctx.saved_tensors
        ext = compiled()
        da, dw_hh, dg_hh, dg_c, db_c, dh0, dc0 = ext.ln_lstm_backward(
            d_hs.contiguous(),
            d_cn.contiguous(),
            w_hh,
            g_hh,
            g_c,
            b_c,
            hs,
            cs,
            acts,
            rs_hh,
            n_c,
            rs_c,
            lengths,
            rec_mask,
            keep_h,
            keep_c,
        )
        t, b = x.shape[:2]
        db = da.sum((0, 1)) if ctx.has_bias else None
        dp = F.linear(x, w_ih).view(t * b, -1)  # W_ih x again, (T*B, 4H); becomes dL/d(W_ih x)
        dg_ih = ext.ln_rows_backward(dp, da.view(t * b, -1), g_ih, rs_ih)
        del da
        dx = dp.mm(w_ih).view(x.shape) if ctx.needs_input_grad[0] else None
        dw_ih = dp.t().mm(x.reshape(t * b, -1))
        return (
            dx,
            dw_ih,
            dg_ih,
            db,
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
    bias_ih, bias_hh = cell.bias_ih, cell.bias_hh
    bias = none if bias_ih is None or bias_hh is None else bias_ih + bias_hh  # (4H,)
    b_c = cell.ln_c.bias if cell.ln_c.bias is not None else none
    hs, c_n = _LNLSTMSequence.apply(
        x,
        cell.weight_ih,
        cell.ln_ih.weight,
        bias,
        cell.weight_hh,
        cell.ln_hh.weight,
        cell.ln_c.weight,
        b_c,
        state[0].contiguous(),
        state[1].contiguous(),
        none.long() if lengths is None else lengths,
        cell.ln_ih.eps,
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
    @first_derivative_only
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
