"""lstmlab: the LSTM family of Olah's "Understanding LSTM Networks" as PyTorch modules.

Drop-in layers (:class:`LSTM`, :class:`GRU`, :class:`RNN`) and cells (:class:`LSTMCell`,
:class:`GRUCell`, :class:`RNNCell`) with torch's arguments and parameter names; the post's
variants as switches; one readable time loop (:class:`Recurrent`) and stacking
(:class:`Stack`) for any :class:`Cell`, including your own.

The subpackages, from the bottom up (each imports only those before it):

- :mod:`lstmlab.nn` -- cells, the readable runner, stacks, the drop-in layers (torch only);
- :mod:`lstmlab.kernels` -- the fused C++ operations, registered with :mod:`lstmlab.nn.dispatch`;
- :mod:`lstmlab.data` -- synthetic tasks, corpora, vocabularies, streams;
- :mod:`lstmlab.models` -- language model, sequence model, seq2seq with attention, generation;
- :mod:`lstmlab.train` -- settings, jobs, the training loop, checkpoints;
- :mod:`lstmlab.viz` -- cell diagrams, the gate explorer, plots;
- :mod:`lstmlab.study` -- the variant study (runs, tables, significance);
- :mod:`lstmlab.cli` -- the ``lstmlab`` command.

Importing :mod:`lstmlab` imports :mod:`lstmlab.kernels`, so the fused operations are registered
before the first layer runs.
"""

from lstmlab import kernels
from lstmlab.models import AdditiveAttention, MultiplicativeAttention, Seq2Seq
from lstmlab.nn import (
    GRU,
    LSTM,
    MLSTM,
    RNN,
    SLSTM,
    VARIANTS,
    Cell,
    ClockworkRNN,
    ClockworkRNNCell,
    DepthGatedLSTM,
    DepthGatedLSTMCell,
    Gates,
    GridLSTM,
    GridLSTMCell,
    GridLSTMColumn,
    GRUCell,
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    MinGRU,
    MinGRUCell,
    MinLSTM,
    MinLSTMCell,
    MLSTMCell,
    Recurrent,
    RNNCell,
    SLSTMCell,
    Stack,
    State,
    chrono_,
    forget_bias_,
    identity_,
    init,
    make_layer,
    orthogonal_,
    regularizers,
    run,
)

fused = kernels  # ``lstmlab.kernels.disabled()`` reads as well as ``lstmlab.kernels.disabled()``

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
    "Stack",
    "run",
    "VARIANTS",
    "make_layer",
    "regularizers",
    "init",
    "chrono_",
    "forget_bias_",
    "orthogonal_",
    "identity_",
    "kernels",
    "fused",
    "AdditiveAttention",
    "MultiplicativeAttention",
    "Seq2Seq",
]
__version__ = "0.1.0"
