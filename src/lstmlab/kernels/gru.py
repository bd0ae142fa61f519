"""The GRU as a fused sequence operation (kernels: csrc/gru.h)."""

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
from lstmlab.nn.cells.gru import GRUCell


def _forward_shapes(x, w_ih, b_ih, w_hh, b_hh, h0, lengths, reset_after, mask, keep_h):
    """hs (T+1, B, H), the input half of the pre-activations (T, B, 3H), the candidate's
    recurrent part (T, B, H)."""
    t, b = x.shape[:2]
    h = w_hh.shape[1]
    return x.new_empty(t + 1, b, h), x.new_empty(t, b, 3 * h), x.new_empty(t, b, h)


def _backward_shapes(d_hs, x, w_ih, w_hh, has_bias, hs, *rest):
    like, none = torch.empty_like, x.new_empty(0)
    bias = x.new_empty(w_ih.shape[0]) if has_bias else none
    return like(x), like(w_ih), bias, like(w_hh), torch.empty_like(bias), like(hs[0])


gru_forward = kernel_op(
    "gru_forward",
    "(Tensor x, Tensor w_ih, Tensor b_ih, Tensor w_hh, Tensor b_hh, Tensor h0, Tensor lengths, "
    f"bool reset_after, Tensor rec_mask, Tensor keep_h) -> {tensors(3)}",
    _forward_shapes,
)
gru_backward = kernel_op(
    "gru_backward",
    "(Tensor grad_hs, Tensor x, Tensor w_ih, Tensor w_hh, bool has_bias, Tensor hs, Tensor acts, "
    "Tensor aux, Tensor lengths, bool reset_after, Tensor rec_mask, Tensor keep_h) -> "
    f"{tensors(6)}",
    _backward_shapes,
)


def _save(ctx, inputs, output):
    x, w_ih, b_ih, w_hh, _, _, lengths, reset_after, rec_mask, keep_h = inputs
    ctx.save_for_backward(x, w_ih, w_hh, *output, lengths, rec_mask, keep_h)
    ctx.reset_after, ctx.has_bias = reset_after, b_ih.numel() > 0


def _backward(ctx, d_hs, d_acts, d_aux):
    first_derivative_only()
    x, w_ih, w_hh, hs, acts, aux, lengths, rec_mask, keep_h = ctx.saved_tensors
    dx, dw_ih, db_ih, dw_hh, db_hh, dh0 = gru_backward(
        grad_or_zeros(d_hs, hs),
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


gru_forward.register_autograd(_backward, setup_context=_save)


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
    hs, _, _ = gru_forward(
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


dispatch.register_sequence_op(
    GRUCell,
    fused_sequence_op(gru_sequence),
    accepts=runs_here_or_triton,
    onnx=to_onnx.gru_translated,
)
