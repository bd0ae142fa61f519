"""Helpers shared by the fused operations: per-sequence reversal, the padding mask, the
regularisers' masks in the kernels' form, and the readable loop for what a kernel lacks."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from lstmlab.kernels._build import extension
from lstmlab.nn.recurrent import run

SECOND_DERIVATIVE = (
    "lstmlab's fused kernels give first derivatives only; for a second derivative "
    "(create_graph=True: gradient penalties, Hessians, MAML) run the layer inside "
    "`with lstmlab.kernels.disabled():`, whose readable loop is differentiable any number of times"
)


def first_derivative_only(backward: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a fused op's hand-written backward as giving first derivatives only. Asked for a
    graph (``create_graph=True``, grad mode on inside the backward), it raises, where
    ``torch.autograd.function.once_differentiable`` would hand back gradients without a graph
    and a second derivative would read as zero."""

    @functools.wraps(backward)
    def checked(ctx: Any, *grads: Tensor) -> Any:
        if torch.is_grad_enabled():
            raise RuntimeError(SECOND_DERIVATIVE)
        return backward(ctx, *grads)

    return checked


def runs_here(x: Tensor) -> bool:
    """Whether the C++ kernels take ``x``: float32 or float64 on the CPU, with the kernels built."""
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and extension() is not None
    )


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of a (T, B, ·) batch within its own length; padding stays at the
    end."""
    if lengths is None:
        return x.flip(0)
    steps = torch.arange(x.shape[0], device=x.device).unsqueeze(1)  # (T, 1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (T, B)
    return x.gather(0, index.unsqueeze(-1).expand_as(x))


def zero_padding(y: Tensor, lengths: Tensor | None) -> Tensor:
    """Zero (T, B, ·) at steps past each sequence's length: padded inputs never reach a kernel
    (inf there would make NaN gradients) and padded outputs are zeros, as in the readable loop."""
    if lengths is None:
        return y
    live = torch.arange(y.shape[0], device=y.device).unsqueeze(1) < lengths  # (T, B)
    return torch.where(live.unsqueeze(-1), y, 0.0)


def run_order(y: Tensor, lengths: Tensor | None, reverse: bool) -> Tensor:
    """(T, B, ·) with the padding zeroed and, with ``reverse``, each sequence reversed within its
    length: a layer's input in the order a kernel runs. Its own inverse, so it also turns a
    kernel's outputs back into the layer's order."""
    y = zero_padding(y, lengths)
    return reverse_padded(y, lengths) if reverse else y


def readable_unless(
    fused_can: Callable[..., bool] = lambda cell, reverse: True, *, regularized: bool = False
):
    """Decorate a fused op whose kernel lacks some form of its cell: where
    ``fused_can(cell, reverse)`` is false -- or, for a kernel without regularisers (not
    ``regularized``), given a recurrent-dropout mask or zoneout -- the readable loop runs the
    layer instead, with the same masks. A ``regularized`` op is handed the masks itself."""

    def decorate(op):
        @functools.wraps(op)
        def fused_or_readable(cell, x, state, lengths, reverse, *, recurrent_mask=None, zoneout=()):
            masked = recurrent_mask is not None or bool(zoneout)
            if (masked and not regularized) or not fused_can(cell, reverse):
                out, final, _ = run(
                    cell,
                    x,
                    state,
                    lengths,
                    reverse=reverse,
                    recurrent_mask=recurrent_mask,
                    zoneout=zoneout,
                )
                return out, final
            if not regularized:
                return op(cell, x, state, lengths, reverse)
            return op(
                cell, x, state, lengths, reverse, recurrent_mask=recurrent_mask, zoneout=zoneout
            )

        return fused_or_readable

    return decorate


def empty(like: Tensor) -> Tensor:
    """The placeholder the kernels read as 'this part is switched off'."""
    return like.new_empty(0)


def regularizers(
    recurrent_mask: Tensor | None,
    zoneout: Sequence[Tensor],
    parts: int,
    lengths: Tensor | None,
    reverse: bool,
    none: Tensor,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The masks as the kernels read them: the recurrent dropout mask (B, P), and one zoneout keep
    tensor (T, B, size) per zoned state part (``parts`` of them), in the order the kernel runs
    through time (reversed within each sequence when ``reverse``); ``none`` where one is off."""
    mask = none if recurrent_mask is None else recurrent_mask.contiguous()
    keep = [k if not reverse else reverse_padded(k, lengths) for k in zoneout]
    keep = [k.contiguous() for k in keep] + [none] * (parts - len(keep))
    return mask, tuple(keep)
