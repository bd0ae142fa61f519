"""The sLSTM (Beck et al. 2024) as one fused sequence operation (kernels: csrc/slstm.h)."""

from __future__ import annotations

import torch
from torch import Tensor

from lstmlab.kernels._common import (
    cpp_only,
    empty,
    first_derivative_only,
    fused_sequence_op,
    grad_or_zeros,
    kernel_op,
    readable_unless,
    run_order,
    tensors,
)
from lstmlab.nn import dispatch
from lstmlab.nn.cells.slstm import SLSTMCell


def _forward_shapes(x, w_ih, bias, w_hh, h0, c0, n0, m0, lengths, exponential_forget):
    """hs, cs, ns, ms (T+1, B, H); the saved pre-activations and activations (T, B, 4H)."""
    t, b = x.shape[:2]
    h = h0.shape[1]
    return (*(x.new_empty(t + 1, b, h) for _ in range(4)), x.new_empty(t, b, 4 * h))


def _backward_shapes(d_hs, d_cn, d_nn, d_mn, x, w_ih, w_hh, hs, *rest):
    """The gradients, each shaped as what it is the gradient of."""
    like = torch.empty_like
    return (
        like(x),
        like(w_ih),
        x.new_empty(w_ih.shape[0]),
        like(w_hh),
        *(like(hs[0]) for _ in range(4)),
    )


slstm_forward = kernel_op(
    "slstm_forward",
    "(Tensor x, Tensor w_ih, Tensor bias, Tensor w_hh, Tensor h0, Tensor c0, Tensor n0, "
    f"Tensor m0, Tensor lengths, bool exponential_forget) -> {tensors(5)}",
    _forward_shapes,
)
slstm_backward = kernel_op(
    "slstm_backward",
    "(Tensor grad_hs, Tensor grad_cn, Tensor grad_nn, Tensor grad_mn, Tensor x, Tensor w_ih, "
    "Tensor w_hh, Tensor hs, Tensor cs, Tensor ns, Tensor ms, Tensor acts, Tensor lengths, "
    f"bool exponential_forget) -> {tensors(8)}",
    _backward_shapes,
)


def _save(ctx, inputs, output):
    x, w_ih, bias, w_hh, _, _, _, _, lengths, exponential_forget = inputs
    ctx.save_for_backward(x, w_ih, w_hh, *output, lengths)
    ctx.exponential_forget, ctx.has_bias = exponential_forget, bias.numel() > 0


def _backward(ctx, d_hs, d_cs, d_ns, d_ms, d_acts):
    first_derivative_only()
    x, w_ih, w_hh, hs, cs, ns, ms, acts, lengths = ctx.saved_tensors
    dx, dw_ih, dbias, dw_hh, dh0, dc0, dn0, dm0 = slstm_backward(
        grad_or_zeros(d_hs, hs),
        grad_or_zeros(d_cs, cs)[-1],
        grad_or_zeros(d_ns, ns)[-1],
        grad_or_zeros(d_ms, ms)[-1],
        x,
        w_ih,
        w_hh,
        hs,
        cs,
        ns,
        ms,
        acts,
        lengths,
        ctx.exponential_forget,
    )
    bias = dbias if ctx.has_bias else None
    return dx, dw_ih, bias, dw_hh, dh0, dc0, dn0, dm0, None, None


slstm_forward.register_autograd(_backward, setup_context=_save)


@readable_unless()  # recurrent dropout and zoneout: the readable loop
def slstm_sequence(
    cell: SLSTMCell,
    x: Tensor,
    state: tuple[Tensor, ...],
    lengths: Tensor | None,
    reverse: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run an sLSTM cell over ``x`` (T, B, I) like :func:`lstmlab.nn.recurrent.run` (no gates):
    the output (T, B, H) and the final ``(h, c, n, m)``, each (B, H)."""
    x = run_order(x, lengths, reverse)
    none = empty(x)
    bias = none if cell.bias_ih is None or cell.bias_hh is None else cell.bias_ih + cell.bias_hh
    hs, cs, ns, ms, _ = slstm_forward(
        x.contiguous(),
        cell.weight_ih,
        bias,
        cell.weight_hh,
        *(s.contiguous() for s in state),
        none.long() if lengths is None else lengths,
        cell.exponential_forget,
    )
    out = run_order(hs[1:], lengths, reverse)  # (T, B, H)
    return out, (hs[-1], cs[-1], ns[-1], ms[-1])


dispatch.register_sequence_op(
    SLSTMCell, fused_sequence_op(slstm_sequence), accepts=cpp_only("SLSTMCell")
)
