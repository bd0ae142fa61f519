"""Fused sequence operations: the readable loop's maths with a hand-written backward in C++.

Each built-in cell family has one (``lstm.py``, ``gru.py``, ``rnn.py``, ``layer_norm.py``,
``depth_gated.py``, ``grid.py``; ``clockwork.py`` runs on the Elman kernel), and ``step.py``
holds the one-step routes of the generation path. Each module registers its operation, at
import, with :mod:`lstmlab.nn.dispatch` for the cell classes it accelerates; the cells and
layers never import this package. A layer then uses an operation whenever the cell is exactly a
built-in class (a user's subclass that changes ``step`` keeps the readable loop), the tensors are
float32/float64 on the CPU, and gates are not asked for. The kernels without regularisers hand a
layer with recurrent dropout or zoneout back to the readable loop
(``_common.readable_unless``). Every fused operation is tested against
:func:`lstmlab.nn.recurrent.run`.

``with lstmlab.kernels.disabled(): ...`` runs everything through the readable loop (for tests,
debugging and benchmarks). ``LSTMLAB_BACKEND`` (:mod:`lstmlab.kernels.backend`) chooses between
the C++ kernels, the Triton kernels (:mod:`lstmlab.kernels.triton`: the LSTM, GRU and Elman
operators on CUDA tensors) and the readable loop.
"""

from lstmlab.kernels import (  # noqa: F401
    clockwork,
    depth_gated,
    grid,
    gru,
    layer_norm,
    lstm,
    mlstm,
    rnn,
    scan,
    slstm,
    step,
)
from lstmlab.kernels._build import extension
from lstmlab.nn.dispatch import disabled, is_enabled, sequence_op, step_op

__all__ = ["disabled", "is_enabled", "sequence_op", "step_op", "extension"]
