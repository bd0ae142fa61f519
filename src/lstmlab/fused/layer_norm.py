"""The layer-normalised LSTM and GRU (Ba, Kiros & Hinton 2016) as fused sequence operations
(kernels: csrc/ln_lstm.h, csrc/ln_gru.h).

The input half of the pre-activations, ``LN(W_ih x_t; γ_ih) + b``, does not depend on the
recurrence, so it is computed here for all steps at once (torch ops, autograd); a kernel runs
the recurrence -- the recurrent half's layer norm, the gates, and for the LSTM the cell state's
layer norm -- and hands back that half's gradient. A projection (``proj_size``) or a
regulariser (recurrent dropout, zoneout) is not in the kernels: such a layer runs the readable
loop.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..cells.layer_norm import LayerNormGRUCell, LayerNormLSTMCell
from ._build import extension
from ._common import empty, readable_unless, run_order


class _LNLSTMSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, w_hh, g_hh, g_c, b_c, h0, c0, lengths, eps):
        hs, cs, acts, n_hh, rs_hh, n_c, rs_c = extension().ln_lstm_forward(
            a, w_hh, g_hh, g_c, b_c, h0, c0, lengths, eps)
        ctx.save_for_backward(w_hh, g_hh, g_c, b_c, hs, cs, acts, n_hh, rs_hh, n_c, rs_c,
                              lengths)
        return hs, cs[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_hs, d_cn):
        w_hh, g_hh, g_c, b_c, hs, cs, acts, n_hh, rs_hh, n_c, rs_c, lengths = ctx.saved_tensors
        da, dw_hh, dg_hh, dg_c, db_c, dh0, dc0 = extension().ln_lstm_backward(
            d_hs.contiguous(), d_cn.contiguous(), w_hh, g_hh, g_c, b_c, hs, cs, acts, n_hh,
            rs_hh, n_c, rs_c, lengths)
        return (da, dw_hh, dg_hh, dg_c, db_c if b_c.numel() else None, dh0, dc0, None, None)


@readable_unless(lambda cell, reverse: cell.weight_hr is None)     # no projection in the kernel
def ln_lstm_sequence(cell: LayerNormLSTMCell, x: Tensor, state: tuple[Tensor, ...],
                     lengths: Tensor | None, reverse: bool) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run a layer-normalised LSTM cell over ``x`` (T, B, I) like :func:`lstmlab.recurrent.run`
    (no gates); with a projection or a regulariser, through that readable loop itself."""
    x = run_order(x, lengths, reverse)
    a = cell.ln_ih(F.linear(x, cell.weight_ih))                          # (T, B, 4H)
    if cell.bias_ih is not None:
        a = a + cell.bias_ih + cell.bias_hh
    none = empty(x)
    b_c = cell.ln_c.bias if cell.ln_c.bias is not None else none
    hs, c_n = _LNLSTMSequence.apply(a.contiguous(), cell.weight_hh, cell.ln_hh.weight,
                                    cell.ln_c.weight, b_c, state[0].contiguous(),
                                    state[1].contiguous(),
                                    none.long() if lengths is None else lengths,
                                    cell.ln_hh.eps)
    return run_order(hs[1:], lengths, reverse), (hs[-1], c_n)


class _LNGRUSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, w_hh, g_hh, b_hh, h0, lengths, eps):
        hs, acts, n_hh, rs_hh = extension().ln_gru_forward(a, w_hh, g_hh, b_hh, h0, lengths, eps)
        ctx.save_for_backward(w_hh, g_hh, b_hh, hs, acts, n_hh, rs_hh, lengths)
        return hs

    @staticmethod
    @once_differentiable
    def backward(ctx, d_hs):
        w_hh, g_hh, b_hh, hs, acts, n_hh, rs_hh, lengths = ctx.saved_tensors
        da, dw_hh, dg_hh, db_hh, dh0 = extension().ln_gru_backward(
            d_hs.contiguous(), w_hh, g_hh, b_hh, hs, acts, n_hh, rs_hh, lengths)
        return da, dw_hh, dg_hh, db_hh if b_hh.numel() else None, dh0, None, None


@readable_unless()
def ln_gru_sequence(cell: LayerNormGRUCell, x: Tensor, state: tuple[Tensor, ...],
                    lengths: Tensor | None, reverse: bool) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run a layer-normalised GRU cell over ``x`` (T, B, I) like :func:`lstmlab.recurrent.run`
    (no gates); with a regulariser, through that readable loop itself."""
    x = run_order(x, lengths, reverse)
    a = cell.ln_ih(F.linear(x, cell.weight_ih))                          # (T, B, 3H)
    if cell.bias_ih is not None:
        a = a + cell.bias_ih
    none = empty(x)
    hs = _LNGRUSequence.apply(a.contiguous(), cell.weight_hh, cell.ln_hh.weight,
                              none if cell.bias_hh is None else cell.bias_hh,
                              state[0].contiguous(), none.long() if lengths is None else lengths,
                              cell.ln_hh.eps)
    return run_order(hs[1:], lengths, reverse), (hs[-1],)
