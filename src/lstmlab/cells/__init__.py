"""Cells: one time step each. See :mod:`lstmlab.cells.base` for the protocol."""

from .base import Cell, Gates, State
from .gru import GRUCell
from .lstm import LSTMCell
from .rnn import RNNCell

__all__ = ["Cell", "Gates", "State", "LSTMCell", "GRUCell", "RNNCell"]
