"""The drop-in part: cells, the one readable time loop, stacks and layers. Depends on torch only.

Imports run one way, bottom to top:

- :mod:`.cells` -- one time step per cell family (``step(x, state) -> (h, state, gates)``);
- :mod:`.regularizers` and :mod:`.recurrent` -- recurrent dropout and zoneout, and the readable
  runner (:func:`~lstmlab.nn.recurrent.run`) that every fast path is tested against;
- :mod:`.stack` -- layers and directions of any cell, torch's calling convention;
- :mod:`.layers` -- ``LSTM``, ``GRU``, ``RNN`` and the other families' layers;
- :mod:`.registry` -- every built-in cell by name (``lstmlab cells``);
- :mod:`.quantize` -- ``torch.ao.quantization.quantize_dynamic`` for the layers;
- :mod:`.init` -- initialisations from the literature (chrono, orthogonal, identity), in place
  on any of these layers, as ``torch.nn.init`` does on tensors.

Bad input raises the exception type ``torch.nn`` raises for the same mistake:
:class:`ShapeError`, :class:`DtypeError` and :class:`DeviceError` derive from each of torch's
types for that mistake (see :mod:`._checks`).

:mod:`.dispatch` is where the kernels (:mod:`lstmlab.kernels`) register their fast operations;
nothing here imports a kernel.
"""

from lstmlab.nn import dispatch, init, quantize, regularizers
from lstmlab.nn._checks import DeviceError, DtypeError, ShapeError
from lstmlab.nn.cells import (
    Cell,
    ClockworkRNNCell,
    DepthGatedLSTMCell,
    Gates,
    GridLSTMCell,
    GridLSTMColumn,
    GRUCell,
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    MinGRUCell,
    MinLSTMCell,
    MLSTMCell,
    RNNCell,
    SLSTMCell,
    State,
)
from lstmlab.nn.init import chrono_, forget_bias_, identity_, orthogonal_
from lstmlab.nn.layers import (
    GRU,
    LSTM,
    MLSTM,
    RNN,
    SLSTM,
    ClockworkRNN,
    DepthGatedLSTM,
    GridLSTM,
    MinGRU,
    MinLSTM,
)
from lstmlab.nn.recurrent import Recurrent, run
from lstmlab.nn.registry import VARIANTS, make_layer
from lstmlab.nn.stack import Stack

__all__ = [
    "Cell",
    "Gates",
    "State",
    "LSTMCell",
    "GRUCell",
    "RNNCell",
    "LayerNormLSTMCell",
    "LayerNormGRUCell",
    "ClockworkRNNCell",
    "DepthGatedLSTMCell",
    "GridLSTMCell",
    "GridLSTMColumn",
    "LSTM",
    "GRU",
    "RNN",
    "ClockworkRNN",
    "DepthGatedLSTM",
    "GridLSTM",
    "SLSTMCell",
    "SLSTM",
    "MinGRUCell",
    "MinLSTMCell",
    "MLSTMCell",
    "MinGRU",
    "MinLSTM",
    "MLSTM",
    "Recurrent",
    "run",
    "Stack",
    "VARIANTS",
    "make_layer",
    "dispatch",
    "init",
    "quantize",
    "chrono_",
    "forget_bias_",
    "orthogonal_",
    "identity_",
    "regularizers",
    "ShapeError",
    "DtypeError",
    "DeviceError",
]
