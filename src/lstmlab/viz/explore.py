"""The gate explorer: a language model's units and gates over a text, as one self-contained page.

:func:`activations` runs a trained :class:`~lstmlab.models.LanguageModel` over a text and keeps,
for every layer and every token, the hidden state ``h_t``, the cell state ``c_t`` (LSTM cells)
and every gate the cell's ``step`` returns (``input``, ``forget``, ``candidate``, ``output``;
``reset``, ``update``, ``candidate`` for a GRU). :func:`write_explorer` writes them into one HTML
file -- inline JS and CSS, the values packed in one byte each (base64), no server, no network --
that colours each token by a chosen unit of a chosen quantity, shows every quantity of that unit
at the hovered token, and ranks the units that react most to a selected span (mean inside minus
mean outside), after LSTMVis (Strobelt et al. 2017) and Karpathy, Johnson & Fei-Fei 2015.

Example::

    model, vocab, _ = load_trained("runs/run/checkpoint")
    write_explorer(activations(model, vocab, open("notes.txt").read()), "explore.html")
"""

from __future__ import annotations

import base64
import json
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor

from lstmlab.models import LanguageModel
from lstmlab.nn.cells.base import Cell, Gates, State
from lstmlab.nn.recurrent import run
from lstmlab.nn.stack import Stack
from lstmlab.viz.diagram import cell_svg
from lstmlab.viz.explore_page import PAGE

MAX_TOKENS = 20_000  # a page beyond this grows slow to open and to recolour
MAX_VALUES = 4_000_000  # numbers in the page, all layers and quantities (~1.3 bytes each)
LEVELS = 256  # a unit's values over the text are stored as one of 256 evenly spaced levels


class _Recording(Cell):
    """``cell``, with its new state parts reported next to its gates, so that the one time loop
    (:func:`lstmlab.nn.recurrent.run`, ``keep_gates=True``) keeps the state of every step too."""

    def __init__(self, cell: Cell) -> None:
        super().__init__(
            cell.input_size,
            cell.hidden_size,
            state_sizes=cell.state_sizes,
            output_size=cell.output_size,
        )
        self.cell = cell

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        h, state, gates = self.cell.step(x, state)
        return h, state, {**gates, **{f"state {k}": s for k, s in enumerate(state)}}


def activations(
    model: LanguageModel,
    vocab,
    text: str,
    *,
    max_tokens: int = MAX_TOKENS,
    max_values: int = MAX_VALUES,
) -> dict:
    """Every layer's hidden state, cell state and gates at every token of ``text``.

    The text is tokenized by ``vocab`` (characters for a char-level model) and read from a zero
    state, one layer at a time, through the readable loop. Texts longer than ``max_tokens``
    tokens, or whose activations would exceed ``max_values`` numbers, are cut to their start
    with a warning (the page would be too large to open comfortably).

    Returns a dict::

        {"tokens": [str, ...],            # the T tokens read
         "level": "char" | "word",
         "total": int,                    # tokens in the whole text (> T if cut)
         "cell": str,                     # the model's cell name, e.g. "lstm"
         "layers": [{"hidden": (T, O), "cell": (T, H), "input": (T, H), ...}, ...],
         "diagram": str}                  # the cell's diagram (SVG), gates as data-gate

    Each layer maps a quantity to a float tensor (T, units): ``"hidden"`` is h_t (the layer's
    output), ``"cell"`` the second part of the state (c_t of an LSTM; absent for one-part states
    such as the GRU's), then the cell's gates in the order its ``step`` returns them.
    """
    if not isinstance(model, LanguageModel):
        raise ValueError(
            f"the explorer reads text with a language model (a checkpoint of "
            f"`lstmlab train --task text`); got {type(model).__name__}"
        )
    if not isinstance(model.rnn, Stack):
        raise ValueError(
            f"the explorer reads each layer's cell; a {model.cell_name!r} model's layers "
            f"({type(model.rnn).__name__}) have no per-layer cells"
        )
    if vocab is None:
        raise ValueError(
            "the explorer needs the model's vocabulary; this checkpoint has none "
            "(a task model, not a language model)"
        )
    if not isinstance(text, str) or not text:
        raise ValueError("text must be a non-empty string")
    for name, value in (("max_tokens", max_tokens), ("max_values", max_values)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    tokens = vocab.tokenize(text)
    if not tokens:
        raise ValueError("text has no tokens (only whitespace, for a word-level model)")
    cells = model.rnn.cells
    per_token = sum(
        c.output_size + c.hidden_size * (len(c.state_sizes) > 1) for c in cells
    ) + _gate_values(cells[0]) * len(cells)
    keep = max(1, min(len(tokens), max_tokens, max_values // per_token))
    if keep < len(tokens):
        warnings.warn(
            f"the explorer shows the first {keep} of {len(tokens)} tokens (at most "
            f"{max_tokens} tokens and {max_values} values, {per_token} per token "
            f"for this model)",
            stacklevel=2,
        )
    was_training = model.training
    model.eval()  # no dropout: the model as it predicts
    try:
        layers = _read(model, cells, vocab.encode(tokens[:keep]))
    finally:
        model.train(was_training)
    return {
        "tokens": tokens[:keep],
        "level": vocab.level,
        "total": len(tokens),
        "cell": model.cell_name,
        "layers": layers,
        "diagram": cell_svg(cells[0]),
    }


@torch.no_grad()
def _read(model: LanguageModel, cells: tuple[Cell, ...], ids: Tensor) -> list[dict[str, Tensor]]:
    """Token ids (T,) through the model's layers (their ``cells``), one by one: each layer's
    quantities (T, units)."""
    ids = ids.to(model.embedding.weight.device)
    x = model.embedding(ids).unsqueeze(1)  # (T, 1, E): time-major, a batch of one
    layers = []
    for cell in cells:  # a language model has one direction
        state = cell.initial_state(1, dtype=x.dtype, device=x.device)
        x, _, seen = run(_Recording(cell), x, state, keep_gates=True)  # x: (T, 1, O)
        layer = {"hidden": x[:, 0]}
        if len(cell.state_sizes) > 1:  # (h, c[, a]): c is the cell state
            layer["cell"] = seen["state 1"][:, 0]
        layer.update({k: g[:, 0] for k, g in seen.items() if not k.startswith("state ")})
        layers.append({k: v.float().cpu() for k, v in layer.items()})
    return layers


@torch.no_grad()
def _gate_values(cell: Cell) -> int:
    """Gate values per token of one layer, found by one step on zeros."""
    x = torch.zeros(
        1,
        cell.input_size,
        dtype=next(cell.parameters()).dtype,
        device=next(cell.parameters()).device,
    )
    _, _, gates = cell.step(x, cell.initial_state(1))
    return sum(g.shape[-1] for g in gates.values())


def pack(values: Tensor) -> dict:
    """One quantity's values (T, U) in one byte each: unit j's values become the levels
    ``lo[j] + k * step[j]``, k = 0 ... 255, from its smallest value to its largest, and each
    value its nearest level (so within ``step[j] / 2`` of it).

    Returns ``{"units": U, "lo": [U floats], "step": [U floats], "data": base64}``, the data
    the T * U levels k as bytes, time-major (token t's unit j at ``t * U + j``). :func:`unpack`
    reads it back, as the page does. A NaN is stored as 0 and an infinity as +-1e30.
    """
    v = torch.nan_to_num(values.detach().double().cpu(), nan=0.0).clamp(-1e30, 1e30)
    if v.ndim != 2:
        raise ValueError(f"values must be (tokens, units), got shape {tuple(v.shape)}")
    if v.shape[0] == 0:
        raise ValueError("values must have at least one token")
    lo = v.min(0).values
    step = (v.max(0).values - lo) / (LEVELS - 1)  # 0 for a unit that never moves
    k = torch.where(step > 0, (v - lo) / torch.where(step > 0, step, 1.0), 0.0)
    levels = k.round().clamp(0, LEVELS - 1).to(torch.uint8)
    return {
        "units": int(v.shape[1]),
        "lo": lo.tolist(),
        "step": step.tolist(),
        "data": base64.b64encode(levels.contiguous().numpy().tobytes()).decode("ascii"),
    }


def unpack(packed: dict) -> Tensor:
    """The values (T, U), float64, of one quantity as :func:`pack` stored them (and the page
    reads them: ``lo[j] + k * step[j]``)."""
    units = int(packed["units"])
    levels = torch.frombuffer(bytearray(base64.b64decode(packed["data"])), dtype=torch.uint8)
    lo = torch.tensor(packed["lo"], dtype=torch.double)
    step = torch.tensor(packed["step"], dtype=torch.double)
    if units == 0:
        return torch.zeros(0, 0, dtype=torch.double)
    return lo + levels.reshape(-1, units).double() * step


SVG_NS = ' xmlns="http://www.w3.org/2000/svg"'


def _svg_body(svg: str) -> str:
    """The diagram as inline SVG in HTML: no XML declaration, no namespace (the HTML parser puts
    an ``<svg>`` in it), so the page names no address at all."""
    body = svg.split("?>", 1)[1].strip() if svg.startswith("<?xml") else svg
    return body.replace(SVG_NS, "", 1)


def write_explorer(
    acts: dict,
    path: str | os.PathLike,
    *,
    title: str = "lstmlab explorer",
    replaced: int = 0,
) -> Path:
    """Write the page for ``acts`` (from :func:`activations`) to ``path``; return its path.

    Each quantity's values are packed by :func:`pack` (one byte per value, each within 1/510 of
    its unit's range over the text of the model's value) and decoded by the page's script.
    ``replaced``, the number of invalid UTF-8 sequences replaced by U+FFFD when the text was
    read (as ``lstmlab explore`` counts them), puts a notice at the top of the page when not
    zero.

    The cell's diagram (``acts["diagram"]``, :func:`lstmlab.viz.diagram.cell_svg`) is drawn
    beside the text, each gate's box lit by that gate's value at the hovered token.

    All text -- the tokens, the title and the diagram -- reaches the page as JSON inside
    ``<script type="application/json">`` with every ``<``, ``>`` and ``&`` escaped (so no
    ``</script>`` or ``<!--`` in a corpus can end it), and the page's script puts it into the DOM
    with ``textContent``: a corpus is always shown as text, never run. Each token is shown in a
    box of its own, isolated for the bidirectional algorithm, left to right in the order the model
    reads them; control and formatting characters are shown as visible symbols; see
    :mod:`lstmlab.viz.explore_page`.
    """
    if not isinstance(replaced, int) or isinstance(replaced, bool) or replaced < 0:
        raise ValueError(f"replaced must be a non-negative integer, got {replaced!r}")
    data = {
        "title": str(title),
        "tokens": list(acts["tokens"]),
        "level": acts["level"],
        "total": int(acts["total"]),
        "cell": acts["cell"],
        "replaced": replaced,
        "layers": [{name: pack(v) for name, v in layer.items()} for layer in acts["layers"]],
        "diagram": _svg_body(acts.get("diagram", "")),
    }
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # Inside <script> the HTML parser looks for "</script" and "<!--" only; with no "<" left
    # neither can occur. \u2028/\u2029 are valid JSON but were line ends to older JS parsers.
    for raw, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    path = Path(path)
    path.write_text(PAGE.replace("__LSTMLAB_DATA__", text), encoding="utf-8")
    return path
