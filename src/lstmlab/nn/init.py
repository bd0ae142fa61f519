"""Initialisations of recurrent layers from the literature, in the style of ``torch.nn.init``.

Each function changes a layer's parameters in place, under ``torch.no_grad()``, and returns the
layer. They work on every layer built on :class:`~lstmlab.Stack` (:class:`~lstmlab.LSTM` and its
variants, :class:`~lstmlab.GRU`, :class:`~lstmlab.RNN`, the depth-gated LSTM, the clockwork RNN,
the xLSTM's sLSTM and mLSTM, minGRU and minLSTM)
-- every layer and direction of it -- on a single :class:`~lstmlab.Cell`, and, where the form
allows, on :class:`~lstmlab.GridLSTM`. The parameters are the layer's own, by torch's names
(``weight_hh_l0``, ``bias_ih_l1_reverse``, ...), with the gate blocks in torch's order (LSTM: i,
f, g, o; GRU: r, z, n); a variant without a gate has no rows for it (see
:class:`~lstmlab.LSTMCell`'s ``gate_names``).

- :func:`chrono_` -- chrono initialisation of the gate biases (Tallec & Ollivier 2018);
- :func:`forget_bias_` -- a constant forget-gate bias (Gers et al. 2000; Jozefowicz et al. 2015);
- :func:`orthogonal_` -- orthogonal recurrent weights, one orthogonal matrix per gate block
  (Saxe et al. 2014; Henaff et al. 2016);
- :func:`identity_` -- identity recurrent weights, the IRNN of Le, Jaitly & Hinton 2015.

A function asked for a gate the layer lacks (:func:`chrono_` on an :class:`~lstmlab.RNN` or an
LSTM without forget gate) raises :class:`ValueError` and changes nothing.

Example::

    >>> lstm = LSTM(16, 64, num_layers=2, bidirectional=True)
    >>> chrono_(orthogonal_(lstm), t_max=100)    # biases for dependencies up to ~100 steps
    LSTM(16, 64, num_layers=2, bidirectional=True)
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlab.nn.cells.base import Cell
from lstmlab.nn.cells.clockwork import ClockworkRNNCell
from lstmlab.nn.cells.grid import GridLSTMCell
from lstmlab.nn.cells.gru import GRUCell
from lstmlab.nn.cells.layer_norm import LayerNormGRUCell, LayerNormLSTMCell
from lstmlab.nn.cells.lstm import LSTMCell
from lstmlab.nn.cells.minimal import MinGRUCell, MinLSTMCell
from lstmlab.nn.cells.mlstm import MLSTMCell
from lstmlab.nn.cells.slstm import SLSTMCell
from lstmlab.nn.layers.grid import GridLSTM
from lstmlab.nn.stack import Stack

__all__ = ["chrono_", "forget_bias_", "orthogonal_", "identity_", "gate_rows"]

L = TypeVar("L", bound=nn.Module)

_GRU_GATES = ("reset", "update", "candidate")
_GRID_GATES = ("input", "forget", "candidate", "output")
_SLSTM_GATES = ("input", "forget", "candidate", "output")
_MLSTM_ROWS = ("query", "key", "value", "output", "input", "forget")


def gate_rows(cell: Cell) -> tuple[str, ...]:
    """The names of the row blocks of a cell's ``weight_ih``/``weight_hh``/biases, in order:
    ``cell.gate_names`` for the LSTM family (``("input", "forget", "candidate", "output")`` for
    torch's LSTM, three names for NIG, NFG and CIFG), ``("reset", "update", "candidate")`` for
    the GRU, ``("candidate",)`` for an Elman RNN (one block, no gate); the sLSTM's i, f, z, o,
    minLSTM's f, i, h̃, minGRU's z, h̃. Each block is ``hidden_size`` rows, except the mLSTM's
    ``("query", "key", "value", "output", "input", "forget")``, whose two gates have one row per
    head."""
    if isinstance(cell, (LSTMCell, LayerNormLSTMCell)):
        return tuple(cell.gate_names)
    if isinstance(cell, (GRUCell, LayerNormGRUCell)):
        return _GRU_GATES
    if isinstance(cell, SLSTMCell):
        return _SLSTM_GATES
    if isinstance(cell, MLSTMCell):
        return _MLSTM_ROWS
    if isinstance(cell, MinLSTMCell):
        return ("forget", "input", "candidate")
    if isinstance(cell, MinGRUCell):
        return ("update", "candidate")
    return ("candidate",)


def chrono_(layer: L, t_max: float, *, generator: torch.Generator | None = None) -> L:
    r"""Chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural networks warp
    time?"): gate biases for dependencies of up to ``t_max`` steps.

    .. math::
        b_f \sim \log(\mathcal{U}(1, T_{max} - 1)), \qquad b_i = -b_f

    per unit, independently; the recurrent biases of those gates (``bias_hh``'s rows) are set
    to 0, so ``b_ih + b_hh`` is the value drawn. At initialisation the forget gate is then
    ``σ(b_f) = 1 - 1 / u`` with ``u ~ U(1, T_max - 1)``: each unit forgets at a time scale
    spread between 1 and ``T_max`` steps, and writes little (``σ(-b_f)``).

    Which rows: the LSTM family's forget and input rows; a coupled LSTM (CIFG, f = 1 - i) gets
    ``b_i = -b_f`` only, which sets its forget gate to the same ``σ(b_f)``; an LSTM without
    input gate (NIG) gets ``b_f`` only. In a GRU the update gate z keeps the state
    (``h_t = (1 - z) n + z h_{t-1}``), so it gets ``b_z = log U(1, T_max - 1)`` (the paper's
    GRU form); the reset gate is left as it is. A Grid LSTM block gets the LSTM's rows in every
    dimension. minLSTM (``f' = σ(b_f) / (σ(b_f) + σ(b_i))``) gets the LSTM's ``b_f, -b_i``, so
    ``f' = σ(b_f)`` too; minGRU's update gate writes (``h_t = (1 - z) h_{t-1} + z h̃``), so it
    gets ``b_z = -log U(1, T_max - 1)``: ``1 - z = σ(b_f)``.

    The sLSTM and the mLSTM get the forget bias alone, one per unit (sLSTM) or per head
    (mLSTM): ``b_f`` for a sigmoid forget gate, and for ``exponential_forget=True``
    ``b_f = log σ(log u) = -log(1 + 1/u)``, the log of the same forget value -- the same time
    scales, ``f = exp(b_f) < 1``. Their exponential input gates keep their biases: the sLSTM's
    normaliser divides a constant input scale out of ``c / n`` (``-b_f`` would change no
    output), and the mLSTM's divides out the same way wherever ``|nᵀq| >= 1``.

    Args:
        layer: an lstmlab layer (a :class:`~lstmlab.Stack`, :class:`~lstmlab.GridLSTM`) or cell.
        t_max: the longest dependency expected, in steps (e.g. the sequence length); > 2.
        generator: draws the biases (default: torch's global generator).

    Raises:
        ValueError: ``t_max`` <= 2, or a layer with no bias, or none with a gate that keeps the
            state (an Elman RNN, an LSTM without forget gate, a clockwork RNN).
    """
    if isinstance(t_max, bool) or not isinstance(t_max, (int, float)) or not t_max > 2:
        raise ValueError(
            f"t_max must be a number > 2 (forget biases ~ log U(1, t_max - 1)); got {t_max!r}"
        )
    cells = _cells(layer, "chrono_")
    plans: list[Any] = []
    for cell in cells:
        if isinstance(cell, GridLSTMCell):
            if cell.bias is None:
                raise ValueError(f"chrono_ sets gate biases, but {_what(layer)} has bias=False")
            plans.append(cell)
            continue
        keep, write = _chrono_rows(cell, layer)
        if getattr(cell, "bias_ih", None) is None:
            raise ValueError(f"chrono_ sets gate biases, but {_what(layer)} has bias=False")
        plans.append((cell, keep, write))
    with torch.no_grad():
        for plan in plans:
            if isinstance(plan, GridLSTMCell):
                bias = plan.bias
                assert bias is not None  # checked above
                rows = bias.view(plan.dims, 4, -1)  # (N, gates i f g o, H)
                b = _log_uniform(rows[:, 1], t_max, generator)
                rows[:, 1] = b
                rows[:, 0] = -b
                continue
            cell, keep, write = plan
            b = _log_uniform(cell.bias_ih[_rows(cell, keep or write)], t_max, generator)  # log u
            if keep is not None:  # f = σ(b): exp(b_f) = σ(b) for an exponential forget gate
                _set_bias(cell, keep, F.logsigmoid(b) if _exponential_forget(cell) else b)
            if write is not None:
                _set_bias(cell, write, -b)
    return layer


def forget_bias_(layer: L, value: float = 1.0) -> L:
    """A constant forget-gate bias (Gers et al. 2000; Jozefowicz et al. 2015: 1 closes most of
    the gap to the GRU): ``value`` in ``bias_ih``'s forget rows, ``bias_hh``'s set to 0, so
    ``b_ih + b_hh = value``. A Grid LSTM block gets it in every dimension. The sLSTM, minLSTM
    and the mLSTM (one forget row per head, no ``bias_hh``) get it in their forget rows; with
    ``exponential_forget=True`` the bias is ``log f`` itself, so a value <= 0 keeps ``f <= 1``
    (the xLSTM code draws mLSTM forget biases from 3 to 6, for σ).

    Raises:
        ValueError: a layer with no bias, or with no forget gate (a GRU, minGRU, an Elman RNN,
            NFG, CIFG -- whose forget gate is 1 - i --, a clockwork RNN).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"value must be a number, got {value!r}")
    cells = _cells(layer, "forget_bias_")
    plans: list[Any] = []
    for cell in cells:
        if isinstance(cell, GridLSTMCell):
            if cell.bias is None:
                raise ValueError(f"forget_bias_ sets a bias, but {_what(layer)} has bias=False")
            plans.append(cell)
            continue
        if isinstance(cell, (GRUCell, LayerNormGRUCell)) or "forget" not in gate_rows(cell):
            raise ValueError(
                f"forget_bias_ sets the forget-gate bias, but {_what(layer)} has no forget "
                f"gate (its rows: {', '.join(gate_rows(cell))})"
            )
        if getattr(cell, "bias_ih", None) is None:
            raise ValueError(f"forget_bias_ sets a bias, but {_what(layer)} has bias=False")
        plans.append(cell)
    with torch.no_grad():
        for cell in plans:
            if isinstance(cell, GridLSTMCell):
                assert cell.bias is not None
                cell.bias.view(cell.dims, 4, -1)[:, 1] = value
                continue
            _set_bias(cell, "forget", value)
    return layer


def orthogonal_(layer: L, gain: float = 1.0, *, generator: torch.Generator | None = None) -> L:
    """Orthogonal recurrent weights: each gate block of ``weight_hh`` (H, P) -- rows i, f, g, o
    of an LSTM, r, z, n of a GRU, the one block of an RNN -- is set to an independent
    (semi-)orthogonal matrix times ``gain`` (``torch.nn.init.orthogonal_``): ``W Wᵀ = gain² I``
    for a square block, ``Wᵀ W = gain² I`` for the (H, P) blocks of an LSTM with ``proj_size``
    P < H. A Grid LSTM block's rows (H, N·H) per gate and dimension get orthonormal rows. The
    input weights, biases, projections and the variants' own weights are left as they are.

    Raises:
        ValueError: a clockwork RNN, whose recurrent matrix is block-triangular by construction.
    """
    cells = _cells(layer, "orthogonal_")
    if any(isinstance(c, ClockworkRNNCell) for c in cells):
        raise ValueError(
            "orthogonal_ cannot keep the clockwork RNN's block-triangular recurrent weights "
            "(only its upper block triangle is used); initialise it with its own reset_parameters"
        )
    with torch.no_grad():
        for cell in cells:
            for block in _recurrent_blocks(cell):
                nn.init.orthogonal_(block, gain=gain, generator=generator)
    return layer


def identity_(layer: L, gain: float = 1.0) -> L:
    """Identity recurrent weights: each gate block of ``weight_hh`` is set to ``gain · I``.

    With ``RNN(..., nonlinearity="relu")`` and zero biases this is the IRNN of Le, Jaitly &
    Hinton 2015 ("A simple way to initialize recurrent networks of rectified linear units"):
    ``h_t = relu(W_ih x_t + h_{t-1})`` at the start, so the state is carried unchanged. Biases
    are not touched (``torch.nn.init.zeros_`` them for the paper's form); Le et al. draw the
    input weights from N(0, 0.001²).

    Raises:
        ValueError: a layer whose blocks are not square (an LSTM with ``proj_size``, a Grid
            LSTM).
    """
    cells = _cells(layer, "identity_")
    for cell in cells:
        for block in _recurrent_blocks(cell):
            if block.shape[0] != block.shape[1]:
                raise ValueError(
                    f"identity_ needs square recurrent blocks, but {_what(layer)} has "
                    f"{tuple(block.shape)} blocks (proj_size, or a Grid LSTM's N·H inputs)"
                )
    with torch.no_grad():
        for cell in cells:
            for block in _recurrent_blocks(cell):
                block.copy_(gain * torch.eye(block.shape[0], dtype=block.dtype))
    return layer


def _cells(layer: nn.Module, function: str) -> list:
    """The cells that hold the layer's parameters: a Stack's (every layer and direction,
    re-pointed at the stack's tensors), a Grid LSTM's blocks, or the cell itself."""
    if isinstance(layer, Stack):
        return list(layer.cells)
    if isinstance(layer, GridLSTM):
        return [m for m in layer.modules() if isinstance(m, GridLSTMCell)]
    if isinstance(layer, GridLSTMCell):
        return [layer]
    if isinstance(layer, Cell) and not any(isinstance(m, GridLSTMCell) for m in layer.modules()):
        return [layer]
    if isinstance(layer, Cell):  # a Grid LSTM column: its blocks
        return [m for m in layer.modules() if isinstance(m, GridLSTMCell)]
    raise TypeError(
        f"{function} takes an lstmlab layer (a Stack such as lstmlab.LSTM, or GridLSTM) or "
        f"cell; got {type(layer).__module__}.{type(layer).__qualname__}"
    )


def _chrono_rows(cell: Cell, layer: nn.Module) -> tuple[str | None, str | None]:
    """The rows chrono_ sets to ``b`` and to ``-b``."""
    if isinstance(cell, (GRUCell, LayerNormGRUCell)):
        return "update", None
    if isinstance(cell, MinGRUCell):  # h_t = (1 - z) h_{t-1} + z h̃: z plays 1 - f
        return None, "update"
    if isinstance(cell, (SLSTMCell, MLSTMCell)):  # the exponential input gate is left alone
        return "forget", None
    rows = gate_rows(cell)
    if getattr(cell, "coupled", False):  # f = 1 - σ(b_i) = σ(b_f) with b_i = -b_f
        return None, "input"
    if "forget" not in rows:
        raise ValueError(
            f"chrono_ sets the forget-gate bias, but {_what(layer)} has no forget gate "
            f"(its rows: {', '.join(rows)})"
        )
    return "forget", ("input" if "input" in rows else None)


def _rows(cell: Cell, gate: str) -> slice:
    """The rows of ``gate``'s block in the cell's biases (see :func:`gate_rows`)."""
    names, H = gate_rows(cell), cell.hidden_size
    sizes = [H] * len(names)
    if isinstance(cell, MLSTMCell):  # q, k, v, o (H rows each), then i, f (one row per head)
        sizes = [H, H, H, H, cell.num_heads, cell.num_heads]
    k = names.index(gate)
    start = sum(sizes[:k])
    return slice(start, start + sizes[k])


def _set_bias(cell: Cell, gate: str, value: Tensor | float) -> None:
    """``value`` in ``bias_ih``'s rows of ``gate``, 0 in ``bias_hh``'s (where the cell has one),
    so that their sum is ``value``."""
    rows = _rows(cell, gate)
    bias_ih = cast(Tensor, cell.bias_ih)  # a Parameter (checked by the caller)
    bias_hh = cast("Tensor | None", getattr(cell, "bias_hh", None))
    bias_ih[rows] = value
    if bias_hh is not None:
        bias_hh[rows] = 0.0


def _exponential_forget(cell: Cell) -> bool:
    return isinstance(cell, (SLSTMCell, MLSTMCell)) and cell.exponential_forget


def _recurrent_blocks(cell) -> list[Tensor]:
    """Views of the gate blocks of a cell's recurrent weight: (H, P) each."""
    if isinstance(cell, GridLSTMCell):  # (N·4H, N·H): per dimension and gate, (H, N·H)
        return list(cell.weight.split(cell.hidden_size))
    weight = getattr(cell, "weight_hh", None)
    if weight is None:
        raise ValueError(f"{type(cell).__name__} has no recurrent weight weight_hh")
    return list(weight.split(cell.hidden_size))


def _log_uniform(like: Tensor, t_max: float, generator: torch.Generator | None) -> Tensor:
    u = torch.empty(like.shape, dtype=like.dtype, device=like.device)
    u.uniform_(1.0, t_max - 1.0, generator=generator)
    return u.log_()


def _what(layer: nn.Module) -> str:
    return f"this {type(layer).__name__}"
