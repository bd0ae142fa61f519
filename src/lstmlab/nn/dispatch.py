"""Where a layer or a cell asks for a fast path, and where the kernels offer one.

The cells and layers of :mod:`lstmlab.nn` never import a kernel: a kernel package
(:mod:`lstmlab.kernels`) registers, at its import, the operations it has for the cell classes it
accelerates, and :mod:`lstmlab.nn` looks them up here. With nothing registered (or inside
:func:`disabled`) every layer runs the readable loop, :func:`lstmlab.nn.recurrent.run`.

Two kinds of operation:

- a **sequence op** runs one cell over a whole sequence, like the readable loop without gates:
  ``op(cell, x (T, B, I), state, lengths, reverse, *, recurrent_mask=None, zoneout=())
  -> (output (T, B, O), final state)``;
- a **step finder** picks a one-step route for a cell call (the generation path):
  ``finder(cell, x (B, I), state) -> step | None`` with ``step(cell, x, state) -> state``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

# The cells import this module, so it names them only as modules (a Cell is an nn.Module).
Cell = nn.Module
State = tuple[Tensor, ...]
SequenceOp = Callable[..., tuple[Tensor, State]]
StepOp = Callable[[Cell, Tensor, State], State]
StepFinder = Callable[[Cell, Tensor, State], StepOp | None]

_SEQUENCE_OPS: dict[type, tuple[SequenceOp, Callable[[Tensor], bool]]] = {}
# Per cell class: for which cells the op's operator has an ONNX translation.
_ONNX: dict[type, Callable[[Any], bool]] = {}
_STEP_FINDERS: list[StepFinder] = []
# Whether a layer may hand its whole stack to torch's own kernel (oneDNN, cuDNN) for input x.
_TORCH_LAYER_CHECKS: list[Callable[[Tensor], bool]] = []
_enabled = True


def register_sequence_op(
    cell_class: type,
    op: SequenceOp,
    *,
    accepts: Callable[[Tensor], bool],
    onnx: Callable[[Any], bool] | None = None,
) -> None:
    """Offer ``op`` for cells of exactly ``cell_class`` (a user's subclass, which may change
    ``step``, keeps the readable loop) on inputs ``x`` for which ``accepts(x)`` holds. While
    ``torch.onnx.export`` traces, ``op`` is offered only where ``onnx(cell)`` says its operator
    has an ONNX translation (with no regulariser masks); elsewhere the readable loop runs, traced
    as an ONNX ``Scan``."""
    _SEQUENCE_OPS[cell_class] = (op, accepts)
    if onnx is not None:
        _ONNX[cell_class] = onnx


def register_step_finder(finder: StepFinder) -> None:
    """Offer one-step routes: ``finder(cell, x, state)`` returns a step or ``None``."""
    _STEP_FINDERS.append(finder)


def register_torch_layer_check(check: Callable[[Tensor], bool]) -> None:
    """Let ``check(x)`` veto torch's own whole-stack kernel (the standard LSTM's oneDNN/cuDNN
    route) for input ``x``: a backend choice that asks for lstmlab's kernels or the readable
    loop is honoured by every layer."""
    _TORCH_LAYER_CHECKS.append(check)


def torch_layer_allowed(x: Tensor) -> bool:
    """Whether a layer may run torch's own whole-stack kernel on ``x`` (never inside
    :func:`disabled`)."""
    return _enabled and all(check(x) for check in _TORCH_LAYER_CHECKS)


@contextmanager
def disabled() -> Iterator[None]:
    """Run every layer and cell through the readable loop inside this block (for tests,
    debugging and benchmarks)::

        with lstmlab.kernels.disabled():
            reference, _ = lstm(x)
    """
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous


def is_enabled() -> bool:
    """False inside :func:`disabled`."""
    return _enabled


def _empty(cell: Cell, x: Tensor) -> bool:
    """An empty batch, input or state: the readable loop computes it (empty outputs of the right
    shapes, gradients included) and no kernel need handle zero-size tensors."""
    return x.numel() == 0 or getattr(cell, "hidden_size", 1) == 0


def transformed() -> bool:
    """Inside a ``torch.func`` transform (``vmap``, ``grad``, ``jacrev``, ...): the readable loop,
    made of torch ops, composes with every transform."""
    if torch.compiler.is_compiling():
        return False
    return torch._C._functorch.peek_interpreter_stack() is not None


def sequence_op(cell: Cell, x: Tensor, *, masked: bool = False) -> SequenceOp | None:
    """The registered sequence op for ``cell`` on ``x`` (with regulariser masks if ``masked``),
    or ``None``: the readable loop runs."""
    usable = _enabled and not _empty(cell, x) and not transformed()
    entry = _SEQUENCE_OPS.get(type(cell)) if usable else None
    if entry is None or not entry[1](x):
        return None
    if torch.onnx.is_in_onnx_export():
        translated = _ONNX.get(type(cell))
        if masked or translated is None or not translated(cell):
            return None
    return entry[0]


def step_op(cell: Cell, x: Tensor, state: State) -> StepOp | None:
    """The first registered one-step route for this call, or ``None``."""
    if not _enabled or _empty(cell, x) or transformed():
        return None
    for finder in _STEP_FINDERS:
        step = finder(cell, x, state)
        if step is not None:
            return step
    return None
