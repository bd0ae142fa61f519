"""Every built-in cell by name: one registry for the command line, the benchmarks and the study."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from lstmlab.nn.layers.clockwork import ClockworkRNN
from lstmlab.nn.layers.depth_gated import DepthGatedLSTM
from lstmlab.nn.layers.grid import GridLSTM
from lstmlab.nn.layers.minimal import MinGRU, MinLSTM
from lstmlab.nn.layers.mlstm import MLSTM
from lstmlab.nn.layers.slstm import SLSTM
from lstmlab.nn.layers.standard import GRU, LSTM, RNN
from lstmlab.nn.stack import Stack

# What a variant builds: a stack of cells, or the Grid LSTM, whose blocks span the layers.
Layer = Stack | GridLSTM

# name -> (layer class, switches, one line for --help)
VARIANTS: dict[str, tuple[type[Stack] | type[GridLSTM], dict, str]] = {
    "lstm": (LSTM, {}, "LSTM with forget gate (torch.nn.LSTM)"),
    "peephole": (LSTM, {"peephole": True}, "peephole connections (Gers & Schmidhuber 2000)"),
    "coupled": (LSTM, {"coupled": True}, "coupled input and forget gates, f = 1 - i (CIFG)"),
    "nig": (LSTM, {"input_gate": False}, "no input gate (Greff et al. 2015)"),
    "nfg": (LSTM, {"forget_gate": False}, "no forget gate (Greff et al. 2015)"),
    "nog": (LSTM, {"output_gate": False}, "no output gate (Greff et al. 2015)"),
    "niaf": (LSTM, {"input_activation": False}, "no input activation function (Greff et al. 2015)"),
    "noaf": (
        LSTM,
        {"output_activation": False},
        "no output activation function (Greff et al. 2015)",
    ),
    "fgr": (LSTM, {"gate_recurrence": True}, "full gate recurrence (Greff et al. 2015)"),
    "gru": (GRU, {}, "gated recurrent unit (torch.nn.GRU, reset after the matmul)"),
    "gru-v3": (GRU, {"reset_after": False}, "GRU of Cho et al. 2014 v3 (reset before the matmul)"),
    "rnn": (RNN, {}, "vanilla tanh RNN (torch.nn.RNN)"),
    "ln-lstm": (LSTM, {"layer_norm": True}, "layer-normalised LSTM (Ba, Kiros & Hinton 2016)"),
    "ln-gru": (GRU, {"layer_norm": True}, "layer-normalised GRU (Ba, Kiros & Hinton 2016)"),
    "grid": (GridLSTM, {}, "2-D Grid LSTM, LSTM cells along depth too (Kalchbrenner et al. 2015)"),
    "grid-tied": (GridLSTM, {"tied": True}, "2-D Grid LSTM, one block shared by all layers"),
    "clockwork": (
        ClockworkRNN,
        {},
        "Clockwork RNN, modules at periods 1, 2, 4, ... (Koutník et al. 2014)",
    ),
    "depth-gated": (
        DepthGatedLSTM,
        {},
        "depth-gated LSTM, cells linked across layers (Yao et al. 2015)",
    ),
    "slstm": (SLSTM, {}, "sLSTM of xLSTM: exponential gating, normaliser (Beck et al. 2024)"),
    "mingru": (MinGRU, {}, "minGRU: gates from x alone, a parallel scan (Feng et al. 2024)"),
    "minlstm": (MinLSTM, {}, "minLSTM: normalised gates from x alone (Feng et al. 2024)"),
    "mlstm": (MLSTM, {}, "mLSTM of xLSTM: matrix memory, parallel form (Beck et al. 2024)"),
}


def make_layer(name: str, input_size: int, hidden_size: int, **kwargs) -> Layer:
    """Build the named variant as a drop-in layer.

    Example: ``make_layer("peephole", 8, 32, num_layers=2)``.
    """
    return layer_factory(name)(input_size, hidden_size, **kwargs)


def layer_factory(name: str) -> Callable[..., Layer]:
    if name not in VARIANTS:
        raise ValueError(f"unknown cell {name!r}; choose one of: {', '.join(VARIANTS)}")
    cls, switches, _ = VARIANTS[name]
    return partial(cls, **switches)
