"""The LSTM family as one fused sequence operation (kernels: csrc/lstm.h)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lstmlab.kernels._build import compiled
from lstmlab.kernels._common import empty, first_derivative_only, regularizers, run_order, runs_here
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


class _LSTMSequence(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        x,
        w_ih,
        bias,
        w_hh,
        w_hr,
        w_ci,
        w_cf,
        w_co,
        w_gg,
        h0,
        c0,
        a0,
        lengths,
        layout,
        rec_mask,
        keep_h,
        keep_c,
    ):
        hs, cs, acts, ms, a_s, cz = compiled().lstm_forward(
            x,
            w_ih,
            bias,
            w_hh,
            w_hr,
            w_ci,
            w_cf,
            w_co,
            w_gg,
            h0,
            c0,
            a0,
            lengths,
            layout,
            rec_mask,
            keep_h,
            keep_c,
        )
        ctx.save_for_backward(
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
            rec_mask,
            keep_h,
            keep_c,
            cz,
        )
        ctx.layout, ctx.has_bias = layout, bias.numel() > 0
        return hs, cs[-1].clone(), a_s[-1].clone() if a_s.numel() else empty(x)

    @staticmethod
    @first_derivative_only
    def backward(ctx, d_hs, d_cn, d_an):
        (
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
            rec_mask,
            keep_h,
            keep_c,
            cz,
        ) = ctx.saved_tensors
        (dx, dw_ih, dbias, dw_hh, dw_hr, dw_ci, dw_cf, dw_co, dw_gg, dh0, dc0, da0) = (
            compiled().lstm_backward(
                d_hs.contiguous(),
                d_cn.contiguous(),
                d_an.contiguous(),
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
                rec_mask,
                keep_h,
                keep_c,
                cz,
            )
        )
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
    x = run_order(x, lengths, reverse)
    none = empty(x)
    rec_mask, (keep_h, keep_c) = regularizers(recurrent_mask, zoneout, 2, lengths, reverse, none)

    def part(t: Tensor | None) -> Tensor:
        return none if t is None else t

    bias = none if cell.bias_ih is None or cell.bias_hh is None else cell.bias_ih + cell.bias_hh
    a0 = state[2].contiguous() if cell.gate_recurrence else none
    hs, c_n, a_n = _LSTMSequence.apply(
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
    final = (hs[-1], c_n, a_n) if cell.gate_recurrence else (hs[-1], c_n)
    return out, final


dispatch.register_sequence_op(LSTMCell, lstm_sequence, accepts=runs_here)
