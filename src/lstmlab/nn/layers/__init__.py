"""Layers: cells run over time and stacked, with ``torch.nn.LSTM``'s calling convention.

:mod:`.standard` holds the drop-ins for ``torch.nn.LSTM``, ``GRU`` and ``RNN`` (the post's
variants as switches); the other files hold the layers of the cell families that are more than a
:class:`~lstmlab.nn.stack.Stack` of one cell class. Layers import cells, the runner and the
stack, never a kernel."""

from lstmlab.nn.layers.clockwork import ClockworkRNN
from lstmlab.nn.layers.depth_gated import DepthGatedLSTM
from lstmlab.nn.layers.grid import GridLSTM
from lstmlab.nn.layers.minimal import MinGRU, MinLSTM
from lstmlab.nn.layers.mlstm import MLSTM
from lstmlab.nn.layers.slstm import SLSTM
from lstmlab.nn.layers.standard import GRU, LSTM, RNN

__all__ = [
    "LSTM",
    "GRU",
    "RNN",
    "ClockworkRNN",
    "DepthGatedLSTM",
    "GridLSTM",
    "SLSTM",
    "MinGRU",
    "MinLSTM",
    "MLSTM",
]
