"""Cells: one time step each, the equations as code. See :mod:`lstmlab.nn.cells.base` for the
protocol (``step(x, state) -> (h, state, gates)``); one family per file. Cells import only the
protocol, the input checks and :mod:`lstmlab.nn.dispatch`: never a runner, a layer or a kernel."""

from lstmlab.nn.cells.base import Cell, Gates, State
from lstmlab.nn.cells.clockwork import ClockworkRNNCell
from lstmlab.nn.cells.depth_gated import DepthGatedLSTMCell
from lstmlab.nn.cells.grid import GridLSTMCell, GridLSTMColumn
from lstmlab.nn.cells.gru import GRUCell
from lstmlab.nn.cells.layer_norm import LayerNormGRUCell, LayerNormLSTMCell
from lstmlab.nn.cells.lstm import LSTMCell
from lstmlab.nn.cells.minimal import MinGRUCell, MinLSTMCell
from lstmlab.nn.cells.mlstm import MLSTMCell
from lstmlab.nn.cells.rnn import RNNCell
from lstmlab.nn.cells.slstm import SLSTMCell

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
    "SLSTMCell",
    "MinGRUCell",
    "MinLSTMCell",
    "MLSTMCell",
]
