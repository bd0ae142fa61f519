"""The LSTM family as one fused sequence operation (kernels: csrc/lstm.h)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lstmlab.kernels import onednn, to_onnx
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
from lstmlab.nn.cells.lstm import LSTMCell


def _layout(cell: LSTMCell) -> list[int]:
    """Column block of each pre-activation (i, f, g, o; -1 if off), block of each sigmoid gate
    in the FGR feedback, and the switches the kernels read."""
    block = {name: k for k, name in enumerate(cell.gate_names)}
    fed = {name: k for k, name in enumerate(cell.sigmoid_gates)}
    return [
        block.get("input", -1),
        block.get("forget", -1),
        block["candidate"],
        block.get("output", -1),
        fed.get("input", -1),
        fed.get("forget", -1),
        fed.get("output", -1),
        int(cell.coupled),
        int(cell.input_activation),
        int(cell.output_activation),
    ]


def _forward_shapes(
    x, w_ih, bias, w_hh, w_hr, w_ci, w_cf, w_co, w_gg, h0, c0, a0, lengths, layout, mask, kh, kc
):
    """hs (T+1, B, P), cs (T+1, B, H), the pre-activations (T, B, nH), m_t before the projection
    (T, B, H), the FGR gates (T+1, B, sH), c_t before zoneout (T, B, H); (0,) where off."""
    t, b = x.shape[:2]
    n_h, p = w_hh.shape
    h = c0.shape[1]
    return (
        x.new_empty(t + 1, b, p),
        x.new_empty(t + 1, b, h),
        x.new_empty(t, b, n_h),
        x.new_empty(t, b, h) if w_hr.dim() > 1 else x.new_empty(0),
        x.new_empty(t + 1, b, w_gg.shape[0]) if w_gg.dim() > 1 else x.new_empty(0),
        x.new_empty(t, b, h) if kc.dim() > 1 else x.new_empty(0),
    )


def _backward_shapes(d_hs, d_cn, d_an, x, w_ih, w_hh, w_hr, w_ci, w_cf, w_co, w_gg, hs, cs, *rest):
    """The gradients, each shaped as what it is the gradient of."""
    like = torch.empty_like
    da = x.new_empty(x.shape[1], w_gg.shape[0]) if w_gg.dim() > 1 else x.new_empty(0)
    return (
        like(x),
        like(w_ih),
        x.new_empty(w_hh.shape[0]),
        like(w_hh),
        like(w_hr),
        like(w_ci),
        like(w_cf),
        like(w_co),
        like(w_gg),
        like(hs[0]),
        like(cs[0]),
        da,
    )


lstm_forward = kernel_op(
    "lstm_forward",
    "(Tensor x, Tensor w_ih, Tensor bias, Tensor w_hh, Tensor w_hr, Tensor w_ci, Tensor w_cf, "
    "Tensor w_co, Tensor w_gg, Tensor h0, Tensor c0, Tensor a0, Tensor lengths, int[] layout, "
    f"Tensor rec_mask, Tensor keep_h, Tensor keep_c) -> {tensors(6)}",
    _forward_shapes,
)
lstm_backward = kernel_op(
    "lstm_backward",
    "(Tensor grad_hs, Tensor grad_cn, Tensor grad_an, Tensor x, Tensor w_ih, Tensor w_hh, "
    "Tensor w_hr, Tensor w_ci, Tensor w_cf, Tensor w_co, Tensor w_gg, Tensor hs, Tensor cs, "
    "Tensor acts, Tensor ms, Tensor a_s, Tensor lengths, int[] layout, Tensor rec_mask, "
    f"Tensor keep_h, Tensor keep_c, Tensor cz) -> {tensors(12)}",
    _backward_shapes,
)


def _save(ctx, inputs, output):
    (x, w_ih, bias, w_hh, w_hr, w_ci, w_cf, w_co, w_gg, _, _, _, lengths, layout, *masks) = inputs
    ctx.save_for_backward(x, w_ih, w_hh, w_hr, w_ci, w_cf, w_co, w_gg, *output, lengths, *masks)
    ctx.layout, ctx.has_bias = layout, bias.numel() > 0


def _backward(ctx, d_hs, d_cs, d_acts, d_ms, d_as, d_cz):
    first_derivative_only()
    x, w_ih, w_hh, w_hr, w_ci, w_cf, w_co, w_gg, hs, cs, acts, ms, a_s, cz, lengths, *masks = (
        ctx.saved_tensors
    )
    d_an = grad_or_zeros(d_as, a_s)[-1] if a_s.numel() else a_s
    grads = lstm_backward(
        grad_or_zeros(d_hs, hs),
        grad_or_zeros(d_cs, cs)[-1],
        d_an,
        x,
        w_ih,
        w_hh,
        w_hr,
        w_ci,
        w_cf,
        w_co,
        w_gg,
        hs,
        cs,
        acts,
        ms,
        a_s,
        lengths,
        ctx.layout,
        *masks,
        cz,
    )
    dx, dw_ih, dbias, dw_hh, dw_hr, dw_ci, dw_cf, dw_co, dw_gg, dh0, dc0, da0 = grads
    return (
        dx,
        dw_ih,
        dbias if ctx.has_bias else None,
        dw_hh,
        dw_hr,
        dw_ci,
        dw_cf,
        dw_co,
        dw_gg,
        dh0,
        dc0,
        da0,
        None,
        None,
        None,
        None,
        None,
    )


lstm_forward.register_autograd(_backward, setup_context=_save)


def lstm_sequence(
    cell: LSTMCell,
    x: Tensor,
    state: tuple[Tensor, ...],
    lengths: Tensor | None,
    reverse: bool,
    *,
    recurrent_mask: Tensor | None = None,
    zoneout: Sequence[Tensor] = (),
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run an LSTM cell over ``x`` (T, B, I) like :func:`lstmlab.nn.recurrent.run` (no gates), with
    its recurrent dropout mask (B, P) and zoneout keep weights for h and c (each (T, B, ·))."""
    if onednn.usable(cell, x, lengths, recurrent_mask is not None or bool(zoneout)):
        return onednn.onednn_lstm_sequence(cell, x, state, reverse)  # torch's own kernel
    x = run_order(x, lengths, reverse)
    none = empty(x)
    rec_mask, (keep_h, keep_c) = regularizers(recurrent_mask, zoneout, 2, lengths, reverse, none)

    def part(t: Tensor | None) -> Tensor:
        return none if t is None else t

    bias = none if cell.bias_ih is None or cell.bias_hh is None else cell.bias_ih + cell.bias_hh
    a0 = state[2].contiguous() if cell.gate_recurrence else none
    hs, cs, _, _, a_s, _ = lstm_forward(
        x.contiguous(),
        cell.weight_ih,
        bias,
        cell.weight_hh,
        part(cell.weight_hr),
        part(cell.weight_ci),
        part(cell.weight_cf),
        part(cell.weight_co),
        part(cell.weight_gg),
        state[0].contiguous(),
        state[1].contiguous(),
        a0,
        none.long() if lengths is None else lengths,
        _layout(cell),
        rec_mask,
        keep_h,
        keep_c,
    )
    out = run_order(hs[1:], lengths, reverse)  # (T, B, P)
    final = (hs[-1], cs[-1], a_s[-1]) if cell.gate_recurrence else (hs[-1], cs[-1])
    return out, final


dispatch.register_sequence_op(
    LSTMCell,
    fused_sequence_op(lstm_sequence),
    accepts=runs_here_or_triton,
    onnx=to_onnx.lstm_translated,
)
