"""The Elman RNN as a fused sequence operation (kernels: csrc/rnn.h)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lstmlab.kernels import to_onnx
from lstmlab.kernels._common import (
    empty,
    first_derivative_only,
    fused_sequence_op,
    grad_or_zeros,
    kernel_op,
    regularizers,
    run_order,
    runs_here_or_triton,
    tensors,
)
from lstmlab.nn import dispatch
from lstmlab.nn.cells.rnn import ElmanCell, RNNCell


def _forward_shapes(x, w_ih, bias, w_hh, h0, lengths, relu, mask, keep_h):
    """hs (T+1, B, H) and, with zoneout, the step's own h before zoneout (T, B, H)."""
    t, b = x.shape[:2]
    h = w_hh.shape[0]
    own = x.new_empty(t, b, h) if keep_h.dim() > 1 else x.new_empty(0)
    return x.new_empty(t + 1, b, h), own


def _backward_shapes(d_hs, x, w_ih, w_hh, has_bias, hs, *rest):
    like = torch.empty_like
    bias = x.new_empty(w_hh.shape[0]) if has_bias else x.new_empty(0)
    return like(x), like(w_ih), bias, like(w_hh), like(hs[0])


rnn_forward = kernel_op(
    "rnn_forward",
    "(Tensor x, Tensor w_ih, Tensor bias, Tensor w_hh, Tensor h0, Tensor lengths, bool relu, "
    f"Tensor rec_mask, Tensor keep_h) -> {tensors(2)}",
    _forward_shapes,
)
rnn_backward = kernel_op(
    "rnn_backward",
    "(Tensor grad_hs, Tensor x, Tensor w_ih, Tensor w_hh, bool has_bias, Tensor hs, "
    f"Tensor lengths, bool relu, Tensor rec_mask, Tensor keep_h, Tensor hz) -> {tensors(5)}",
    _backward_shapes,
)


def _save(ctx, inputs, output):
    x, w_ih, bias, w_hh, _, lengths, relu, rec_mask, keep_h = inputs
    hs, hz = output
    ctx.save_for_backward(x, w_ih, w_hh, hs, lengths, rec_mask, keep_h, hz)
    ctx.relu, ctx.has_bias = relu, bias.numel() > 0


def _backward(ctx, d_hs, d_hz):
    first_derivative_only()
    x, w_ih, w_hh, hs, lengths, rec_mask, keep_h, hz = ctx.saved_tensors
    dx, dw_ih, dbias, dw_hh, dh0 = rnn_backward(
        grad_or_zeros(d_hs, hs),
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


rnn_forward.register_autograd(_backward, setup_context=_save)


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
    hs, _ = rnn_forward(
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


dispatch.register_sequence_op(
    RNNCell,
    fused_sequence_op(rnn_sequence),
    accepts=runs_here_or_triton,
    onnx=to_onnx.rnn_translated,
)
