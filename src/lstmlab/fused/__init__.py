"""Fused sequence operations: the readable loop's maths with a hand-written backward in C++.

Each built-in cell family has one (``lstm.py``, ``gru.py``, ``rnn.py``, ``layer_norm.py``,
``depth_gated.py``, ``grid.py``; ``clockwork.py`` runs on the Elman kernel); a layer uses it
whenever the cell is exactly a built-in class (a user's subclass that changes ``step`` keeps the
readable loop), the tensors are float32/float64 on the CPU, and gates are not asked for. The
kernels without regularisers hand a layer with recurrent dropout or zoneout back to the readable
loop (``_common.readable_unless``). Every fused operation is tested against
:func:`lstmlab.recurrent.run`.

``with lstmlab.fused.disabled(): ...`` runs everything through the readable loop (for tests,
debugging and benchmarks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from ..cells import Cell, GRUCell, LSTMCell, RNNCell
from ..cells.clockwork import ClockworkRNNCell
from ..cells.depth_gated import DepthGatedLSTMCell
from ..cells.grid import GridLSTMColumn
from ..cells.layer_norm import LayerNormGRUCell, LayerNormLSTMCell
from ._build import extension
from .clockwork import clockwork_sequence
from .depth_gated import depth_gated_sequence
from .grid import grid_sequence
from .gru import gru_sequence
from .layer_norm import ln_gru_sequence, ln_lstm_sequence
from .lstm import lstm_sequence
from .rnn import rnn_sequence
from .step import step_op

SequenceOp = Callable[[Cell, Tensor, tuple[Tensor, ...], Tensor | None, bool],
                      tuple[Tensor, tuple[Tensor, ...]]]
_OPS: dict[type, SequenceOp] = {LSTMCell: lstm_sequence, GRUCell: gru_sequence,
                                RNNCell: rnn_sequence, ClockworkRNNCell: clockwork_sequence,
                                LayerNormLSTMCell: ln_lstm_sequence,
                                LayerNormGRUCell: ln_gru_sequence,
                                DepthGatedLSTMCell: depth_gated_sequence,
                                GridLSTMColumn: grid_sequence}
_enabled = True


@contextmanager
def disabled() -> Iterator[None]:
    """Run every layer through the readable loop inside this block."""
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous


def is_enabled() -> bool:
    return _enabled


def sequence_op(cell: Cell, x: Tensor) -> SequenceOp | None:
    """The fused operation for ``cell`` on ``x``, or ``None`` where the readable loop must run."""
    op = _OPS.get(type(cell))
    if op is None or not _enabled or x.device.type != "cpu" \
            or x.dtype not in (torch.float32, torch.float64) or extension() is None:
        return None
    return op


__all__ = ["disabled", "is_enabled", "sequence_op", "step_op", "extension"]
