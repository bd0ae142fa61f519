"""Cells: one time step each. See :mod:`lstmlab.cells.base` for the protocol."""

from .base import Cell, Gates, State
from .gru import GRUCell
from .lstm import LSTMCell
from .layer_norm import LayerNormGRUCell, LayerNormLSTMCell
from .rnn import RNNCell
# Last: these families' files also hold their layers, which build on Stack (and so on the above).
from .clockwork import ClockworkRNN, ClockworkRNNCell
from .depth_gated import DepthGatedLSTM, DepthGatedLSTMCell
from .grid import GridLSTM, GridLSTMCell, GridLSTMColumn

__all__ = ["Cell", "Gates", "State", "LSTMCell", "GRUCell", "RNNCell", "ClockworkRNNCell",
           "ClockworkRNN", "DepthGatedLSTMCell", "DepthGatedLSTM",
           "GridLSTMCell", "GridLSTMColumn", "GridLSTM", "LayerNormLSTMCell", "LayerNormGRUCell"]
