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
    cpp_only,
    empty,
    first_derivative_only,
    fresh,
    fused_sequence_op,
    grad_or_zeros,
    kernel_op,
    readable_unless,
    regularizers,
    run_order,
    tensors,
)
from lstmlab.nn import dispatch
from lstmlab.nn.cells.layer_norm import LayerNormGRUCell, LayerNormLSTMCell


def _ln_lstm_kernel(
    x, w_ih, g_ih, bias, w_hh, g_hh, g_c, b_c, h0, c0, lengths, eps_ih, eps, mask, kh, kc
):
    """The whole LN-LSTM layer over a sequence. Returns hs, cs (T+1, B, H), the gate
    activations (T, B, 4H), the recurrent half's 1/std (T, B), n(c_t) (T, B, H), the cell
    norm's 1/std (T, B) and the input half's 1/std (T*B,): what the backward needs. W_ih x and
    the recurrent half's W_hh h (each (T, B, 4H)) are rebuilt in the backward, one GEMM each for
    all steps, rather than kept: at B32 T512 H512 each is 128 MiB."""
    ext = compiled()
    t, b = x.shape[:2]
    a = F.linear(x, w_ih)  # (T, B, 4H); becomes LN(W_ih x; γ_ih) + b in place
    rs_ih = ext.ln_rows_forward(a.view(t * b, -1), g_ih, bias, eps_ih)
    return (
        *ext.ln_lstm_forward(a, w_hh, g_hh, g_c, b_c, h0, c0, lengths, eps, mask, kh, kc),
        rs_ih,
    )


def _ln_lstm_shapes(x, w_ih, g_ih, bias, w_hh, *rest):
    t, b = x.shape[:2]
    h = w_hh.shape[1]
    new = x.new_empty
    return (
        new(t + 1, b, h),
        new(t + 1, b, h),
        new(t, b, 4 * h),
        new(t, b),
        new(t, b, h),
        new(t, b),
        new(t * b),
    )


def _ln_lstm_backward_kernel(
    d_hs,
    d_cn,
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
    mask,
    kh,
    kc,
    has_bias,
    need_dx,
):
    ext = compiled()
    da, dw_hh, dg_hh, dg_c, db_c, dh0, dc0 = ext.ln_lstm_backward(
        d_hs, d_cn, w_hh, g_hh, g_c, b_c, hs, cs, acts, rs_hh, n_c, rs_c, lengths, mask, kh, kc
    )
    t, b = x.shape[:2]
    none = x.new_empty(0)
    db = da.sum((0, 1)) if has_bias else none
    dp = F.linear(x, w_ih).view(t * b, -1)  # W_ih x again, (T*B, 4H); becomes dL/d(W_ih x)
    dg_ih = ext.ln_rows_backward(dp, da.view(t * b, -1), g_ih, rs_ih)
    del da
    dx = dp.mm(w_ih).view(x.shape) if need_dx else none
    dw_ih = dp.t().mm(x.reshape(t * b, -1))
    return fresh((dx, dw_ih, dg_ih, db, dw_hh, dg_hh, dg_c, db_c, dh0, dc0))


def _ln_lstm_backward_shapes(d_hs, d_cn, x, w_ih, g_ih, rs_ih, w_hh, g_hh, g_c, b_c, hs, *rest):
    has_bias, need_dx = rest[-2:]
    like, none = torch.empty_like, x.new_empty(0)
    return (
        like(x) if need_dx else none,
        like(w_ih),
        like(g_ih),
        x.new_empty(w_ih.shape[0]) if has_bias else none,
        like(w_hh),
        like(g_hh),
        like(g_c),
        like(b_c),
        like(hs[0]),
        like(hs[0]),
    )


ln_lstm_forward = kernel_op(
    "ln_lstm_forward",
    "(Tensor x, Tensor w_ih, Tensor g_ih, Tensor bias, Tensor w_hh, Tensor g_hh, Tensor g_c, "
    "Tensor b_c, Tensor h0, Tensor c0, Tensor lengths, float eps_ih, float eps, "
    f"Tensor rec_mask, Tensor keep_h, Tensor keep_c) -> {tensors(7)}",
    _ln_lstm_shapes,
    body=_ln_lstm_kernel,
)
ln_lstm_backward = kernel_op(
    "ln_lstm_backward",
    "(Tensor grad_hs, Tensor grad_cn, Tensor x, Tensor w_ih, Tensor g_ih, Tensor rs_ih, "
    "Tensor w_hh, Tensor g_hh, Tensor g_c, Tensor b_c, Tensor hs, Tensor cs, Tensor acts, "
    "Tensor rs_hh, Tensor n_c, Tensor rs_c, Tensor lengths, Tensor rec_mask, Tensor keep_h, "
    f"Tensor keep_c, bool has_bias, bool need_dx) -> {tensors(10)}",
    _ln_lstm_backward_shapes,
    body=_ln_lstm_backward_kernel,
)


def _ln_lstm_save(ctx, inputs, output):
    x, w_ih, g_ih, bias, w_hh, g_hh, g_c, b_c, _, _, lengths, _, _, *masks = inputs
    hs, cs, acts, rs_hh, n_c, rs_c, rs_ih = output
    ctx.save_for_backward(
        x, w_ih, g_ih, rs_ih, w_hh, g_hh, g_c, b_c, hs, cs, acts, rs_hh, n_c, rs_c, lengths, *masks
    )
    ctx.has_bias = bias.numel() > 0


def _ln_lstm_backward(ctx, d_hs, d_cs, *unused):
    first_derivative_only()
    saved = ctx.saved_tensors
    hs, cs, b_c = saved[8], saved[9], saved[7]
    dx, dw_ih, dg_ih, db, dw_hh, dg_hh, dg_c, db_c, dh0, dc0 = ln_lstm_backward(
        grad_or_zeros(d_hs, hs),
        grad_or_zeros(d_cs, cs)[-1],
        *saved,
        ctx.has_bias,
        ctx.needs_input_grad[0],
    )
    return (
        dx if ctx.needs_input_grad[0] else None,
        dw_ih,
        dg_ih,
        db if ctx.has_bias else None,
        dw_hh,
        dg_hh,
        dg_c,
        db_c if b_c.numel() else None,
        dh0,
        dc0,
        *[None] * 6,
    )


ln_lstm_forward.register_autograd(_ln_lstm_backward, setup_context=_ln_lstm_save)


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
    hs, cs, *_ = ln_lstm_forward(
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
    return run_order(hs[1:], lengths, reverse), (hs[-1], cs[-1])


def _ln_gru_shapes(a, w_hh, *rest):
    """hs (T+1, B, H), the gate activations (T, B, 3H), the recurrent half normalised (T, B, 3H)
    and its 1/std (T, B)."""
    t, b, g = a.shape
    return (
        a.new_empty(t + 1, b, g // 3),
        a.new_empty(t, b, g),
        a.new_empty(t, b, g),
        a.new_empty(t, b),
    )


def _ln_gru_backward_shapes(d_hs, w_hh, g_hh, b_hh, hs, acts, *rest):
    like = torch.empty_like
    return like(acts), like(w_hh), like(g_hh), like(b_hh), like(hs[0])


ln_gru_forward = kernel_op(
    "ln_gru_forward",
    "(Tensor a, Tensor w_hh, Tensor g_hh, Tensor b_hh, Tensor h0, Tensor lengths, float eps, "
    f"Tensor rec_mask, Tensor keep_h) -> {tensors(4)}",
    _ln_gru_shapes,
)
ln_gru_backward = kernel_op(
    "ln_gru_backward",
    "(Tensor grad_hs, Tensor w_hh, Tensor g_hh, Tensor b_hh, Tensor hs, Tensor acts, "
    "Tensor n_hh, Tensor rs_hh, Tensor lengths, Tensor rec_mask, Tensor keep_h) -> "
    f"{tensors(5)}",
    _ln_gru_backward_shapes,
)


def _ln_gru_save(ctx, inputs, output):
    _, w_hh, g_hh, b_hh, _, lengths, _, rec_mask, keep_h = inputs
    ctx.save_for_backward(w_hh, g_hh, b_hh, *output, lengths, rec_mask, keep_h)


def _ln_gru_backward(ctx, d_hs, *unused):
    first_derivative_only()
    saved = ctx.saved_tensors
    da, dw_hh, dg_hh, db_hh, dh0 = ln_gru_backward(grad_or_zeros(d_hs, saved[3]), *saved)
    return (da, dw_hh, dg_hh, db_hh if saved[2].numel() else None, dh0, None, None, None, None)


ln_gru_forward.register_autograd(_ln_gru_backward, setup_context=_ln_gru_save)


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
    hs, *_ = ln_gru_forward(
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


dispatch.register_sequence_op(
    LayerNormLSTMCell, fused_sequence_op(ln_lstm_sequence), accepts=cpp_only("LayerNormLSTMCell")
)
dispatch.register_sequence_op(
    LayerNormGRUCell, fused_sequence_op(ln_gru_sequence), accepts=cpp_only("LayerNormGRUCell")
)
