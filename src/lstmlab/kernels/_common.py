"""Helpers shared by the fused operations: per-sequence reversal, the padding mask, the
regularisers' masks in the kernels' form, and the readable loop for what a kernel lacks."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lstmlab.kernels import backend
from lstmlab.kernels._build import compiled, extension
from lstmlab.nn.recurrent import reverse_padded, run


class _ReadableSecondDerivative(torch.autograd.Function):
    """A fused sequence op whose backward is differentiable again: the first derivative comes
    from the op's own (C++) backward; asked for a graph of it (``create_graph=True``: gradient
    penalties, Hessians, MAML), the backward reruns the readable loop and differentiates that,
    so second derivatives are exact rather than missing.

    ``forward(fused, readable, *inputs)``: ``fused()`` and ``readable()`` compute the
    same outputs from the tensors ``inputs`` (the cell's parameters, the input, the state);
    the fused graph is built inside and kept for the first derivative."""

    @staticmethod
    def forward(ctx, fused, readable, *inputs):
        with torch.enable_grad():
            outputs = fused()
        ctx.fused_outputs, ctx.readable = outputs, readable
        ctx.save_for_backward(*inputs)
        return tuple(o.detach() for o in outputs)

    @staticmethod
    def backward(ctx, *grads):
        inputs = ctx.saved_tensors
        wanted = [t for t in inputs if t.requires_grad]
        if torch.is_grad_enabled():  # create_graph: through the readable loop
            with torch.enable_grad():
                outputs = ctx.readable()
        else:
            outputs = ctx.fused_outputs
        pairs = [(o, g) for o, g in zip(outputs, grads) if o.requires_grad and g is not None]
        found = torch.autograd.grad(
            [o for o, _ in pairs],
            wanted,
            [g for _, g in pairs],
            create_graph=torch.is_grad_enabled(),
            retain_graph=True,  # a caller's retain_graph=True may call this backward again
            allow_unused=True,
        )
        by_input = iter(found)
        return (None, None, *[next(by_input) if t.requires_grad else None for t in inputs])


def second_derivatives_by_readable_loop(op: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a sequence op ``op(cell, x, state, lengths, reverse, **masks)`` so that, in eager
    mode with gradients wanted, a second derivative runs the readable loop
    (:class:`_ReadableSecondDerivative`). Traced (``torch.compile``/``torch.export``, which take
    first derivatives only) or without gradients, the op runs as it is."""

    @functools.wraps(op)
    def twice_differentiable(cell, x, state, lengths, reverse, **masks):
        params = list(cell.parameters())
        if (
            not torch.is_grad_enabled()
            or torch.compiler.is_compiling()
            or not any(t.requires_grad for t in (x, *state, *params))
        ):
            return op(cell, x, state, lengths, reverse, **masks)

        def fused() -> tuple[Tensor, ...]:
            out, final = op(cell, x, state, lengths, reverse, **masks)
            return (out, *final)

        def readable() -> tuple[Tensor, ...]:
            out, final, _ = run(cell, x, state, lengths, reverse=reverse, **masks)
            return (out, *final)

        out, *final = _ReadableSecondDerivative.apply(fused, readable, x, *state, *params)
        return out, tuple(final)

    return twice_differentiable


SECOND_DERIVATIVE = (
    "this lstmlab operator's backward gives first derivatives only (torch.compile and "
    "torch.export trace first derivatives); in eager mode the layers take second derivatives "
    "through the readable loop, or run the layer inside `with lstmlab.kernels.disabled():`"
)


def first_derivative_only() -> None:
    """Called first in an operator's registered backward: asked for a graph of the backward
    itself (``create_graph=True`` reaching the operator directly, not through a layer's
    :func:`second_derivatives_by_readable_loop`), it raises, where a backward made of opaque
    kernels would hand back gradients without a graph and a second derivative would read as
    zero. (Compilers trace backwards with grad mode off.)"""
    if torch.is_grad_enabled():
        raise RuntimeError(SECOND_DERIVATIVE)


_HALF = (torch.bfloat16, torch.float16)


@contextlib.contextmanager
def _float32_parameters(cell: nn.Module) -> Iterator[None]:
    """Inside: the cell's bfloat16/float16 parameters read as float32 copies (autograd flows back
    to the originals), as the Stack re-points its cells at its own tensors."""
    swapped = []
    for path, p in list(cell.named_parameters()):
        if p.dtype in _HALF:
            owner, _, leaf = path.rpartition(".")
            module = cell.get_submodule(owner)
            swapped.append((module, leaf, p))
            module._parameters[leaf] = p.float()  # type: ignore[assignment]
    try:
        yield
    finally:
        for module, leaf, p in swapped:
            module._parameters[leaf] = p


def in_float32(op: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a sequence op so that bfloat16/float16 layers and ``torch.autocast`` run it in
    float32 (the kernels compute in float32 or float64): the input, state, masks and the
    cell's half-precision parameters are cast up, the outputs back to the layer's dtype -- under
    autocast, autocast's dtype, as ``torch.nn.LSTM`` gives."""

    @functools.wraps(op)
    def float32_inside(cell, x, state, lengths, reverse, **masks):
        device = x.device.type
        autocast = torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)
        if not autocast and (x.dtype not in _HALF or backend.native_half(x)):
            return op(cell, x, state, lengths, reverse, **masks)
        dtype = torch.get_autocast_dtype(device) if autocast else x.dtype

        def up(t: Any) -> Any:
            if isinstance(t, Tensor):
                return t.float() if t.dtype in _HALF else t
            return tuple(up(s) for s in t)

        wide = {k: up(v) for k, v in masks.items()}
        off = torch.autocast(device, enabled=False) if autocast else contextlib.nullcontext()
        with off, _float32_parameters(cell):
            out, final = op(cell, up(x), up(state), lengths, reverse, **wide)
        return out.to(dtype), tuple(s.to(dtype) for s in final)

    return float32_inside


def fused_sequence_op(op: Callable[..., Any]) -> Callable[..., Any]:
    """What every fused sequence op is registered as: run in float32 for half-precision tensors
    (:func:`in_float32`), with second derivatives by the readable loop
    (:func:`second_derivatives_by_readable_loop`)."""
    return second_derivatives_by_readable_loop(in_float32(op))


@torch.compiler.assume_constant_result
def kernels_built() -> bool:
    """Whether the C++ kernels are built here: asked once and read as a constant by
    ``torch.compile`` and ``torch.export``, which must not trace the build."""
    return extension() is not None


def runs_here(x: Tensor) -> bool:
    """Whether the C++ kernels take ``x``: float32 or float64 on the CPU -- bfloat16 and float16
    too, computed in float32 (:func:`in_float32`) -- or a meta tensor (whose shapes the
    operators' fake kernels give), with the kernels built and chosen
    (:func:`lstmlab.kernels.backend.route`). For a cell family with no Triton kernel: on the
    Triton backend it warns once, and the readable loop runs (see :func:`cpp_only`)."""
    return _cpp_runs(x, "a cell family")


def cpp_only(family: str) -> Callable[[Tensor], bool]:
    """:func:`runs_here` for ``family`` (named in the warning on the Triton backend)."""
    return functools.partial(_cpp_runs, family=family)


def _cpp_runs(x: Tensor, family: str) -> bool:
    way = backend.route(x)
    if way == "triton":
        backend.no_triton_kernel(family)
    return (
        way == "cpp"
        and x.device.type in ("cpu", "meta")
        and x.dtype in (torch.float32, torch.float64, *_HALF)
        and kernels_built()
    )


def runs_here_or_triton(x: Tensor) -> bool:
    """For the families with Triton kernels too (their operators' CUDA kernels, and their CPU
    bodies under ``LSTMLAB_BACKEND=triton``): :func:`runs_here`, or floating-point ``x`` that
    the Triton backend takes."""
    if backend.route(x) == "triton":
        return x.dtype in (torch.float32, torch.float64, *_HALF)
    return runs_here(x)


def fresh(outputs: Tensor | Sequence[Tensor]) -> Any:
    """A kernel's outputs as a custom operator must return them: no output sharing memory with
    another (the kernels hand back one empty placeholder for several switched-off parts, or
    views of one buffer), so any later one that does is copied."""
    if isinstance(outputs, Tensor):
        return outputs
    seen: set[int] = set()
    out = []
    for t in outputs:
        storage = t.untyped_storage()
        key = storage.data_ptr() if storage.nbytes() else id(t)
        if key in seen:
            t = t.clone()
            key = t.untyped_storage().data_ptr() if t.numel() else id(t)
        seen.add(key)
        out.append(t)
    return tuple(out)


def kernel_op(
    name: str, schema: str, fake: Callable[..., Any], *, body: Callable[..., Any] | None = None
) -> Any:
    """``torch.ops.lstmlab.<name>``: the C++ kernel ``name`` as a custom operator with this
    schema, on the CPU, and ``fake`` (output shapes from input shapes, no data read) for meta
    and fake tensors, so ``torch.compile`` and ``torch.export`` see one node. The caller
    registers its autograd (:meth:`register_autograd`) where the op has one. ``body``, if given,
    runs instead of the kernel of that name (an op made of several kernels and torch ops).
    Where :mod:`lstmlab.kernels.backend` lists a Triton implementation of the op, that is its
    CUDA kernel, and its CPU body under ``LSTMLAB_BACKEND=triton``."""

    def cpp(*args: Any) -> Any:
        return body(*args) if body is not None else getattr(compiled(), name)(*args)

    def kernel(*args: Any) -> Any:
        return fresh(backend.cpu_kernel(name, cpp)(*args))

    op = torch.library.custom_op(
        f"lstmlab::{name}", kernel, mutates_args=(), device_types="cpu", schema=schema
    )
    op.register_fake(fake)
    backend.register_cuda(op, name, fresh)  # the Triton kernels, where the op has them
    return op


def tensors(n: int) -> str:
    """A schema's return type of ``n`` tensors: ``(Tensor, Tensor, ...)``."""
    return "(" + ", ".join(["Tensor"] * n) + ")"


def grad_or_zeros(grad: Tensor | None, like: Tensor) -> Tensor:
    """An output's gradient, zeros where autograd passes none."""
    return torch.zeros_like(like) if grad is None else grad.contiguous()


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
