"""The Elman RNN as a fused sequence operation (kernels: csrc/rnn.h)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lstmlab.kernels._build import compiled
from lstmlab.kernels._common import empty, first_derivative_only, regularizers, run_order, runs_here
from lstmlab.nn import dispatch
from lstmlab.nn.cells.rnn import ElmanCell, RNNCell


class _RNNSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w_ih, bias, w_hh, h0, lengths, relu, rec_mask, keep_h):
        hs, hz = compiled().rnn_forward(x, w_ih, bias, w_hh, h0, lengths, relu, rec_mask, keep_h)
        ctx.save_for_backward(x, w_ih, w_hh, hs, lengths, rec_mask, keep_h, hz)
        ctx.relu, ctx.has_bias = relu, bias.numel() > 0
        return hs

    @staticmethod
    @first_derivative_only
    def backward(ctx, d_hs):
        x, w_ih, w_hh, hs, lengths, rec_mask, keep_h, hz = ctx.saved_tensors
        dx, dw_ih, dbias, dw_hh, dh0 = compiled().rnn_backward(
            d_hs.contiguous(),
            x,
            w_ih,
            w_hh,
            ctx.has_bias,
            hs,
            lengths,
            ctx.relu,
            rec_mask,
            keep_h,
            hz,
        )
        return dx, dw_ih, dbias if ctx.has_bias else None, dw_hh, dh0, None, None, None, None


def rnn_sequence(
    cell: RNNCell,
    x: Tensor,
    state: tuple[Tensor, ...],
    lengths: Tensor | None,
    reverse: bool,
    *,
    recurrent_mask: Tensor | None = None,
    zoneout: Sequence[Tensor] = (),
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run an RNN cell over ``x`` (T, B, I) like :func:`lstmlab.nn.recurrent.run`, with its
    recurrent dropout mask (B, H) and zoneout keep weights for h (T, B, H)."""
    out, h_n = elman_sequence(
        cell,
        cell.weight_hh,
        x,
        state[0],
        lengths,
        reverse,
        recurrent_mask=recurrent_mask,
        keep=zoneout[0] if zoneout else None,
    )
    return out, (h_n,)


def elman_sequence(
    cell: ElmanCell,
    weight_hh: Tensor,
    x: Tensor,
    h0: Tensor,
    lengths: Tensor | None,
    reverse: bool,
    *,
    recurrent_mask: Tensor | None,
    keep: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """The Elman recurrence of ``cell`` (its ``weight_ih``, biases and nonlinearity) with the
    recurrent weight ``weight_hh`` over ``x`` (T, B, I): ``h_t = keep_t ⊙ h_{t-1} + (1 - keep_t)
    ⊙ φ(...)``, ``keep`` (T, B, H) in the order of time (``None``: 0). Returns the output
    (T, B, H) and h_n (B, H)."""
    x = run_order(x, lengths, reverse)
    none = empty(x)
    rec_mask, (keep_h,) = regularizers(
        recurrent_mask, () if keep is None else (keep,), 1, lengths, reverse, none
    )
    bias = none if cell.bias_ih is None or cell.bias_hh is None else cell.bias_ih + cell.bias_hh
    hs = _RNNSequence.apply(
        x.contiguous(),
        cell.weight_ih,
        bias,
        weight_hh.contiguous(),
        h0.contiguous(),
        none.long() if lengths is None else lengths,
        cell.nonlinearity == "relu",
        rec_mask,
        keep_h,
    )
    out = run_order(hs[1:], lengths, reverse)
    return out, hs[-1]


dispatch.register_sequence_op(RNNCell, rnn_sequence, accepts=runs_here)
