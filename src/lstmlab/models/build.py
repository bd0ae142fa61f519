"""Models from their JSON description, and the initialisations of their recurrent layers."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from lstmlab.models.language_model import LanguageModel
from lstmlab.models.sequence_model import SequenceModel
from lstmlab.nn import init as rnn_init
from lstmlab.nn.cells import GridLSTMCell, LayerNormLSTMCell, LSTMCell
from lstmlab.nn.layers import GridLSTM
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


# The recurrent initialisations ``init_recurrent`` knows, by the name ``lstmlab train --init``
# takes; "default" leaves each layer's own.
INITS = ("default", "chrono", "orthogonal", "identity")


def parse_init(init: str) -> tuple[str, ...]:
    """``"chrono+orthogonal"`` -> ``("chrono", "orthogonal")``: the initialisations named, each
    one of :data:`INITS`, at most one of them for the recurrent weights."""
    if not isinstance(init, str):
        raise ValueError(f"init must be a string such as 'chrono+orthogonal', got {init!r}")
    names = tuple(init.split("+"))
    unknown = [n for n in names if n not in INITS]
    if unknown or not names:
        raise ValueError(
            f"init must be one of {', '.join(map(repr, INITS))} or several joined by '+' "
            f"(e.g. 'chrono+orthogonal'); got {init!r}"
        )
    if "orthogonal" in names and "identity" in names:
        raise ValueError(
            f"init: 'orthogonal' and 'identity' both set the recurrent weights; got {init!r}"
        )
    if "default" in names and len(names) > 1:
        raise ValueError(
            f"init: 'default' is each layer's own and combines with nothing; got {init!r}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"init names an initialisation twice: {init!r}")
    return names


def init_recurrent(model: nn.Module, init: str, t_max: float = 0.0) -> int:
    """Initialise every recurrent layer of ``model`` as ``init`` says (see :func:`parse_init`):
    ``"chrono"`` -- :func:`lstmlab.nn.init.chrono_` with ``t_max``; ``"orthogonal"`` --
    :func:`~lstmlab.nn.init.orthogonal_`; ``"identity"`` -- :func:`~lstmlab.nn.init.identity_`
    and zero biases (the IRNN of Le et al. 2015).

    As ``--forget-bias``, chrono leaves alone a layer with no gate that keeps the state (an RNN,
    NFG, the clockwork RNN) or with no biases, so one setting serves every cell; the other
    initialisations raise ``ValueError`` where a layer has not their form (orthogonal on the
    clockwork RNN, identity with ``proj_size``). Returns how many layers were changed."""
    names = parse_init(init)
    if names == ("default",):
        return 0
    layers = [m for m in model.modules() if isinstance(m, (Stack, GridLSTM))]
    changed: set[int] = set()
    for layer in layers:
        if "orthogonal" in names:
            rnn_init.orthogonal_(layer)
            changed.add(id(layer))
        if "identity" in names:
            changed.add(id(layer))
            rnn_init.identity_(layer)
            with torch.no_grad():
                for name, p in layer.named_parameters():
                    if name.startswith("bias"):
                        p.zero_()
        if "chrono" in names and _keeps_state(layer):
            rnn_init.chrono_(layer, t_max)
            changed.add(id(layer))
    return len(changed)


def _keeps_state(layer: Stack | GridLSTM) -> bool:
    """Whether chrono has gate biases to set in every cell of ``layer``: a forget gate (or a
    coupled one, or a GRU's update gate) and biases."""
    if isinstance(layer, GridLSTM):
        return layer.bias
    return all(
        getattr(cell, "bias_ih", None) is not None
        and (
            "forget" in rnn_init.gate_rows(cell)
            or "update" in rnn_init.gate_rows(cell)
            or getattr(cell, "coupled", False)
        )
        for cell in layer.cells
    )
