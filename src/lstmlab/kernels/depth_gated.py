"""The depth-gated LSTM (Yao et al. 2015) layer as one fused sequence operation (kernels:
csrc/depth_gated.h).

What does not depend on the recurrence is computed here for all steps at once (torch ops,
autograd): the input half of the pre-activations ``W_ih x_t + b`` and, for a layer with a depth
gate, ``W_xd x_t + b_d + w_ld ⊙ c_t^low``. The kernel runs the peephole recurrence with the depth
gate and returns every c_t as well as every h_t: a layer below the top emits ``[h_t, c_t]`` for
the depth gate above it. A regulariser (recurrent dropout, zoneout) is not in the kernel: such a
layer runs the readable loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
from lstmlab.nn.cells.depth_gated import DepthGatedLSTMCell


def _forward_shapes(a, e, c_low, w_hh, *rest):
    """hs, cs (T+1, B, H), the gate activations (T, B, 4H), the depth gate (T, B, H) or (0,)."""
    t, b = a.shape[:2]
    h = w_hh.shape[1]
    new = a.new_empty
    depth = new(t, b, h) if e.dim() > 1 else new(0)
    return new(t + 1, b, h), new(t + 1, b, h), new(t, b, 4 * h), depth


def _backward_shapes(d_hs, d_cs, c_low, w_hh, w_ci, w_cf, w_co, w_cd, hs, cs, acts, ds, lengths):
    like = torch.empty_like
    return (
        like(acts),
        like(ds),
        like(ds),
        like(w_hh),
        like(w_ci),
        like(w_cf),
        like(w_co),
        like(w_cd),
        like(hs[0]),
        like(cs[0]),
    )


depth_gated_forward = kernel_op(
    "depth_gated_forward",
    "(Tensor a, Tensor e, Tensor c_low, Tensor w_hh, Tensor w_ci, Tensor w_cf, Tensor w_co, "
    f"Tensor w_cd, Tensor h0, Tensor c0, Tensor lengths) -> {tensors(4)}",
    _forward_shapes,
)
depth_gated_backward = kernel_op(
    "depth_gated_backward",
    "(Tensor grad_hs, Tensor grad_cs, Tensor c_low, Tensor w_hh, Tensor w_ci, Tensor w_cf, "
    "Tensor w_co, Tensor w_cd, Tensor hs, Tensor cs, Tensor acts, Tensor ds, Tensor lengths) -> "
    f"{tensors(10)}",
    _backward_shapes,
)


def _save(ctx, inputs, output):
    _, _, c_low, w_hh, w_ci, w_cf, w_co, w_cd, _, _, lengths = inputs
    ctx.save_for_backward(c_low, w_hh, w_ci, w_cf, w_co, w_cd, *output, lengths)


def _backward(ctx, d_hs, d_cs, *unused):
    first_derivative_only()
    c_low, w_hh, w_ci, w_cf, w_co, w_cd, hs, cs, acts, ds, lengths = ctx.saved_tensors
    da, de, dcl, dw_hh, dw_ci, dw_cf, dw_co, dw_cd, dh0, dc0 = depth_gated_backward(
        grad_or_zeros(d_hs, hs),
        grad_or_zeros(d_cs, cs),
        c_low,
        w_hh,
        w_ci,
        w_cf,
        w_co,
        w_cd,
        hs,
        cs,
        acts,
        ds,
        lengths,
    )
    depth = ds.numel() > 0
    return (
        da,
        de if depth else None,
        dcl if depth else None,
        dw_hh,
        dw_ci,
        dw_cf,
        dw_co,
        dw_cd if depth else None,
        dh0,
        dc0,
        None,
    )


depth_gated_forward.register_autograd(_backward, setup_context=_save)


@readable_unless()
def depth_gated_sequence(
    cell: DepthGatedLSTMCell,
    x: Tensor,
    state: tuple[Tensor, ...],
    lengths: Tensor | None,
    reverse: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run a depth-gated cell over ``x`` (T, B, I [+ H: c_t^low]) like
    :func:`lstmlab.nn.recurrent.run` (no gates); with a regulariser, through that loop itself."""
    x = run_order(x, lengths, reverse)
    none = empty(x)
    e = c_low = w_cd = none
    if cell.depth_gate:  # [x_t, c_t^low]: (T, B, I + H) -> (T, B, I), (T, B, H)
        assert cell.weight_xd is not None and cell.weight_cd is not None  # set with depth_gate
        x, c_low = x.split([x.shape[-1] - cell.hidden_size, cell.hidden_size], dim=-1)
        e = F.linear(x, cell.weight_xd, cell.bias_d) + cell.weight_ld * c_low  # (T, B, H)
        w_cd = cell.weight_cd
    a = F.linear(x, cell.weight_ih, cell.bias_ih)  # (T, B, 4H)
    if cell.bias_hh is not None:
        a = a + cell.bias_hh
    hs, cs, _, _ = depth_gated_forward(
        a.contiguous(),
        e.contiguous(),
        c_low.contiguous(),
        cell.weight_hh,
        cell.weight_ci,
        cell.weight_cf,
        cell.weight_co,
        w_cd,
        state[0].contiguous(),
        state[1].contiguous(),
        none.long() if lengths is None else lengths,
    )
    out = torch.cat([hs[1:], cs[1:]], dim=-1) if cell.emit_cell else hs[1:]  # (T, B, 2H | H)
    return run_order(out, lengths, reverse), (hs[-1], cs[-1])


dispatch.register_sequence_op(
    DepthGatedLSTMCell,
    fused_sequence_op(depth_gated_sequence),
    accepts=cpp_only("DepthGatedLSTMCell"),
)
