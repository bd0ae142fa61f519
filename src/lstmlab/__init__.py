"""lstmlab: the LSTM family of Olah's "Understanding LSTM Networks" as PyTorch modules.

Drop-in layers (:class:`LSTM`, :class:`GRU`, :class:`RNN`) and cells (:class:`LSTMCell`,
:class:`GRUCell`, :class:`RNNCell`) with torch's arguments and parameter names; the post's
variants as switches; one readable time loop (:class:`Recurrent`) and stacking
(:class:`Stack`) for any :class:`Cell`, including your own.
"""

from . import fused
from .cells import Cell, Gates, GRUCell, LSTMCell, RNNCell, State
from .layers import GRU, LSTM, RNN
from .recurrent import Recurrent, run
from .stack import Stack

__all__ = ["Cell", "Gates", "State", "LSTMCell", "GRUCell", "RNNCell", "LSTM", "GRU", "RNN",
           "Recurrent", "Stack", "run", "fused"]
__version__ = "0.1.0"
