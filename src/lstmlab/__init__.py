"""lstmlab: the LSTM family of Olah's "Understanding LSTM Networks" as PyTorch modules.

Drop-in layers (:class:`LSTM`, :class:`GRU`, :class:`RNN`) and cells (:class:`LSTMCell`,
:class:`GRUCell`, :class:`RNNCell`) with torch's arguments and parameter names; the post's
variants as switches; one readable time loop (:class:`Recurrent`) and stacking
(:class:`Stack`) for any :class:`Cell`, including your own.
"""

from . import fused
from .cells import Cell, Gates, GRUCell, LSTMCell, RNNCell, State
from .cells import ClockworkRNN, ClockworkRNNCell, DepthGatedLSTM, DepthGatedLSTMCell
from .cells import GridLSTM, GridLSTMCell, GridLSTMColumn, LayerNormGRUCell, LayerNormLSTMCell
from . import regularizers
from .layers import GRU, LSTM, RNN
from .recurrent import Recurrent, run
from .stack import Stack
from .attention import AdditiveAttention, MultiplicativeAttention
from .seq2seq import Seq2Seq

__all__ = ["LayerNormLSTMCell", "LayerNormGRUCell", "regularizers", "Cell", "Gates", "State", "LSTMCell", "GRUCell", "RNNCell", "LSTM", "GRU", "RNN",
           "Recurrent", "Stack", "run", "fused", "ClockworkRNNCell", "ClockworkRNN",
           "DepthGatedLSTMCell", "DepthGatedLSTM",
           "GridLSTMCell", "GridLSTMColumn", "GridLSTM",
           "AdditiveAttention", "MultiplicativeAttention", "Seq2Seq"]
__version__ = "0.1.0"
