"""Models from their JSON description, and the forget-gate initialisation."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from lstmlab.models.language_model import LanguageModel
from lstmlab.models.sequence_model import SequenceModel
from lstmlab.nn.cells import GridLSTMCell, LayerNormLSTMCell, LSTMCell
from lstmlab.nn.stack import Stack

MODELS: dict[str, type[nn.Module]] = {"language": LanguageModel, "sequence": SequenceModel}


def build_model(config: Mapping) -> nn.Module:
    """A fresh model from a ``config()`` dict: ``config["kind"]`` picks the class, the rest are
    its constructor's arguments. Load the weights into it with ``load_state_dict``."""
    kind = config.get("kind") if isinstance(config, Mapping) else None
    if kind not in MODELS:
        raise ValueError(
            f"config['kind'] must be one of {', '.join(map(repr, MODELS))}; got {kind!r}"
        )
    try:
        return MODELS[kind](**{k: v for k, v in config.items() if k != "kind"})
    except TypeError as e:  # an unknown or missing argument, or a value of the wrong type
        raise ValueError(f"cannot build a {kind!r} model from this config: {e}") from None


def model_shapes(config: Mapping) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor in the state dict of ``build_model(config)``, allocating
    nothing (the model is built on the meta device): how large a config's model is, before
    building it for real."""
    with torch.device("meta"):
        model = build_model(config)
    return {k: tuple(t.shape) for k, t in model.state_dict().items()}


def init_forget_bias(model: nn.Module, value: float) -> int:
    """Set the forget-gate bias of every LSTM cell in ``model`` to ``value`` (Gers et al. 2000;
    Jozefowicz et al. 2015: 1 closes most of the gap to the GRU). The value goes into
    ``bias_ih``'s forget rows, ``bias_hh``'s are zeroed, so b_ih + b_hh = value. Cells without a
    forget gate (GRU, RNN, NFG, coupled) are left alone. A Grid LSTM block (a tied one once)
    gets ``value`` in the forget rows of every dimension. Returns how many cells were changed."""
    changed = 0
    for stack in (m for m in model.modules() if isinstance(m, Stack)):
        for cell in stack.cells:
            if (
                not isinstance(cell, (LSTMCell, LayerNormLSTMCell))
                or "forget" not in cell.gate_names
                or cell.bias_ih is None
                or cell.bias_hh is None
            ):
                continue
            rows = slice(
                cell.gate_names.index("forget") * cell.hidden_size,
                (cell.gate_names.index("forget") + 1) * cell.hidden_size,
            )
            with torch.no_grad():
                cell.bias_ih[rows] = value
                cell.bias_hh[rows] = 0.0
            changed += 1
    for block in (m for m in model.modules() if isinstance(m, GridLSTMCell)):
        if block.bias is not None:  # (N·4H,) as (N, 4, H): rows i, f, g, o per dimension
            with torch.no_grad():
                block.bias.view(block.dims, 4, -1)[:, 1] = value
            changed += 1
    return changed
