"""Input checks shared by cells, the runner and the layers.

Each check raises an exception of the type ``torch.nn`` raises for the same mistake, with a
message naming the argument, what was expected and what came:

- :class:`ShapeError` (a ``ValueError`` and a ``RuntimeError``): wrong rank, shape, size or number
  of state parts;
- :class:`DtypeError` (a ``TypeError``, ``ValueError`` and ``RuntimeError``): wrong dtype;
- :class:`DeviceError` (a ``ValueError`` and a ``RuntimeError``): wrong device;
- ``TypeError``: not a tensor, or a constructor argument of the wrong type;
- ``ValueError``: any other bad value (lengths out of range, NaN, a size below its minimum).

torch raises ``ValueError`` for some of these mistakes and ``RuntimeError`` for others (a layer's
input rank and dtype are ``ValueError``, its sizes ``RuntimeError``; a cell's sizes and dtype come
from its C++ kernel as ``RuntimeError``), so the classes derive from each type torch uses for that
kind of mistake: code written to catch torch's exception catches lstmlab's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn
from torch._subclasses.fake_tensor import is_fake


class ShapeError(ValueError, RuntimeError):
    """A tensor or a state of the wrong rank, shape or size, or a state with the wrong number of
    parts: ``torch.nn`` raises ``ValueError`` for some of these and ``RuntimeError`` for others."""


class DtypeError(TypeError, ValueError, RuntimeError):
    """A tensor of the wrong dtype: ``torch.nn``'s layers raise ``ValueError``, its cells (and its
    layers for a state) ``RuntimeError``; ``TypeError`` is what the mistake is."""


class DeviceError(ValueError, RuntimeError):
    """A tensor on another device than the module's parameters (torch: ``RuntimeError``)."""


def _param_like(module: nn.Module) -> Tensor | None:
    for p in module._parameters.values():  # the module's own first: no generator walk
        if p is not None:
            return p
    return next(module.parameters(), None)


def check_input(
    input: object, module: nn.Module, *, rank: int, name: str = "input", check_nan: bool = False
) -> bool:
    """Check ``input`` against ``module`` (its ``input_size``, dtype and device).

    ``rank`` is the batched rank (2 for a cell, 3 for a sequence); ``rank - 1`` means unbatched.
    Returns whether the input is batched. Empty batches pass, as in torch (the caller refuses a
    sequence of no steps). The order is torch's: rank, dtype, then size.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(input).__name__}")
    if input.dim() not in (rank - 1, rank):
        shape = (
            "(T, B, input_size), (B, T, input_size) or (T, input_size)"
            if rank == 3
            else "(B, input_size) or (input_size,)"
        )
        raise ShapeError(
            f"{name} must be {rank - 1}-D (unbatched) or {rank}-D (batched) with shape "
            f"{shape}; got a {input.dim()}-D tensor of shape {tuple(input.shape)}"
        )
    if not input.is_floating_point():
        raise DtypeError(f"{name} must be a floating-point tensor, got dtype {input.dtype}")
    ref = _param_like(module)
    # Under autocast the dtypes may differ, as torch.nn.LSTM allows: autocast picks the dtype.
    if ref is not None and input.dtype != ref.dtype and not torch._C._is_any_autocast_enabled():
        raise DtypeError(
            f"{name} has dtype {input.dtype} but the module's parameters are "
            f"{ref.dtype}; convert one (e.g. module.to({input.dtype}))"
        )
    if input.shape[-1] != module.input_size:
        raise ShapeError(
            f"{name}.size(-1) must equal input_size={module.input_size}; "
            f"got shape {tuple(input.shape)}"
        )
    if ref is not None and input.device != ref.device:
        raise DeviceError(
            f"{name} is on {input.device} but the module's parameters are on "
            f"{ref.device}; move one (e.g. module.to('{input.device}'))"
        )
    if check_nan and has_values(input) and bool(torch.isnan(input).any()):
        raise ValueError(f"{name} contains NaN (shape {tuple(input.shape)}); clean the data first")
    return input.dim() == rank


def has_values(t: Tensor) -> bool:
    """Whether ``t``'s values can be read: not while ``torch.compile`` or ``torch.export`` trace
    (the tensors are fake: shapes without data), nor on the meta device. Checks that need values
    (NaN in the input, lengths in range) are skipped there; shapes are still checked."""
    return not (torch.compiler.is_compiling() or t.device.type == "meta" or is_fake(t))


def state_parts(state: object, name: str) -> tuple:
    """A state in torch's form (a tensor, or a tuple/list of them) as a tuple of parts."""
    if isinstance(state, Tensor):
        return (state,)
    if isinstance(state, (tuple, list)):
        return tuple(state)
    raise TypeError(f"{name} must be a torch.Tensor or a tuple of them, got {type(state).__name__}")


def qualified(obj: object) -> str:
    """The type of ``obj`` with its module, so torch.nn.LSTMCell is not mistaken for ours."""
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def check_state(
    parts: Sequence[object],
    sizes: Sequence[int],
    batch: int,
    batched: bool,
    like: Tensor,
    *,
    name: str,
    lead: tuple[int, ...] = (),
) -> tuple[Tensor, ...]:
    """Check a state given as a tuple of tensors against the expected part sizes.

    Each part ``k`` must be ``lead + (batch, sizes[k])`` (``lead + (sizes[k],)`` if unbatched), with
    the dtype and device of ``like``. ``lead`` is e.g. ``(num_layers * num_directions,)``.
    """
    if len(parts) != len(sizes):
        raise ShapeError(
            f"{name} must have {len(sizes)} part(s) (sizes {tuple(sizes)}), got {len(parts)}"
        )
    dtype, device = like.dtype, like.device  # read once: this runs at every generation step
    for k, (part, size) in enumerate(zip(parts, sizes)):
        label = name if len(sizes) == 1 else f"{name}[{k}]"
        if not isinstance(part, Tensor):
            raise TypeError(f"{label} must be a torch.Tensor, got {type(part).__name__}")
        expected = lead + ((batch, size) if batched else (size,))
        if part.shape != expected:
            raise ShapeError(f"{label} must have shape {expected}, got {tuple(part.shape)}")
        if part.dtype != dtype and not torch._C._is_any_autocast_enabled():
            raise DtypeError(f"{label} has dtype {part.dtype}, expected {dtype} like the input")
        if part.device != device:
            raise DeviceError(f"{label} is on {part.device}, expected {device} like the input")
    return tuple(cast(Tensor, part) for part in parts)  # each checked above


def check_lengths(lengths: object, batch: int, steps: int, device: torch.device) -> Tensor:
    """``lengths``: one integer per sequence, each in ``[1, steps]``; returns a long tensor (B,)."""
    if isinstance(lengths, Tensor):
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise TypeError(f"lengths must hold integers, got dtype {lengths.dtype}")
        t = lengths
    elif isinstance(lengths, Sequence) and all(
        isinstance(n, int) and not isinstance(n, bool) for n in lengths
    ):
        t = torch.tensor(list(lengths), dtype=torch.long)
    else:
        raise TypeError(f"lengths must be a 1-D integer tensor or a list of ints, got {lengths!r}")
    if t.dim() != 1 or t.shape[0] != batch:
        raise ShapeError(
            f"lengths must have one entry per sequence, shape ({batch},); "
            f"got shape {tuple(t.shape)}"
        )
    if t.numel() == 0:  # an empty batch
        return t.to(device=device, dtype=torch.long)
    if not has_values(t):  # traced or meta: no values to read, so no range to check
        return t.to(device=device, dtype=torch.long)
    lo, hi = int(t.min()), int(t.max())
    if lo < 1 or hi > steps:
        raise ValueError(
            f"lengths must lie in [1, {steps}] (the padded length); got min {lo}, max {hi}"
        )
    return t.to(device=device, dtype=torch.long)


def check_positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(
            f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})"
        )
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_bool(name: str, value: object) -> bool:
    """A switch that must be a real bool (as torch requires of ``bias`` and ``batch_first``):
    ``bias=0`` or ``batch_first="False"`` would otherwise be read by truthiness."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


def check_layer_arguments(
    input_size: object,
    hidden_size: object,
    num_layers: object,
    bias: object,
    batch_first: object,
    dropout: object,
    proj_size: object = 0,
) -> None:
    """The constructor arguments of a drop-in layer, in the order ``torch.nn.RNNBase`` checks
    them, so a call with two mistakes fails on the same one as torch's."""
    check_dropout(dropout)
    check_bool("bias", bias)
    check_bool("batch_first", batch_first)
    check_positive_int("input_size", input_size)
    check_positive_int("hidden_size", hidden_size)
    check_positive_int("num_layers", num_layers)
    check_positive_int("proj_size", proj_size, minimum=0)


def check_dropout(dropout: object) -> float:
    """A dropout probability in [0, 1], as a float; otherwise ``ValueError``."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
        raise ValueError(f"dropout must be a number in [0, 1], got {dropout!r}")
    return float(dropout)
