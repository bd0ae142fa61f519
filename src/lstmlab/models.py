"""Whole models around a recurrent layer: a language model and a sequence classifier/regressor.

Both take any built-in cell by name (:data:`lstmlab.registry.VARIANTS`) plus that cell's own
options (``proj_size=64``, ``nonlinearity="relu"``, ...), and both describe themselves as plain
JSON (:meth:`~LanguageModel.config`) that :func:`build_model` turns back into a model -- what a
checkpoint stores next to the weights::

    model = build_model(json.loads(json.dumps(old.config())))
    model.load_state_dict(old.state_dict())

The classes live in :mod:`lstmlab.language_model` and :mod:`lstmlab.sequence_model`, what they
share in :mod:`lstmlab._model_common`; every name is importable from here as well.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ._model_common import StateLike, detach_state
from .language_model import LanguageModel
from .sequence_model import SequenceModel

__all__ = ["LanguageModel", "SequenceModel", "MODELS", "StateLike", "build_model",
           "detach_state", "init_forget_bias"]

MODELS: dict[str, type[nn.Module]] = {"language": LanguageModel, "sequence": SequenceModel}


def build_model(config: Mapping) -> nn.Module:
    """A fresh model from a ``config()`` dict: ``config["kind"]`` picks the class, the rest are
    its constructor's arguments. Load the weights into it with ``load_state_dict``."""
    kind = config.get("kind") if isinstance(config, Mapping) else None
    if kind not in MODELS:
        raise ValueError(f"config['kind'] must be one of {', '.join(map(repr, MODELS))}; "
                         f"got {kind!r}")
    return MODELS[kind](**{k: v for k, v in config.items() if k != "kind"})


def init_forget_bias(model: nn.Module, value: float) -> int:
    """Set the forget-gate bias of every LSTM cell in ``model`` to ``value`` (Gers et al. 2000;
    Jozefowicz et al. 2015: 1 closes most of the gap to the GRU). The value goes into
    ``bias_ih``'s forget rows, ``bias_hh``'s are zeroed, so b_ih + b_hh = value. Cells without a
    forget gate (GRU, RNN, NFG, coupled) are left alone. A Grid LSTM block (a tied one once)
    gets ``value`` in the forget rows of every dimension. Returns how many cells were changed."""
    from .cells import GridLSTMCell, LSTMCell
    from .cells.layer_norm import LayerNormLSTMCell
    from .stack import Stack

    changed = 0
    for stack in (m for m in model.modules() if isinstance(m, Stack)):
        for cell in stack.cells:
            if not isinstance(cell, (LSTMCell, LayerNormLSTMCell)) \
                    or "forget" not in cell.gate_names \
                    or cell.bias_ih is None:
                continue
            rows = slice(cell.gate_names.index("forget") * cell.hidden_size,
                         (cell.gate_names.index("forget") + 1) * cell.hidden_size)
            with torch.no_grad():
                cell.bias_ih[rows] = value
                cell.bias_hh[rows] = 0.0
            changed += 1
    for block in (m for m in model.modules() if isinstance(m, GridLSTMCell)):
        if block.bias is not None:            # (N·4H,) as (N, 4, H): rows i, f, g, o per dimension
            with torch.no_grad():
                block.bias.view(block.dims, 4, -1)[:, 1] = value
            changed += 1
    return changed
