"""Stacking and bidirectionality, written once for every cell.

:class:`Stack` runs layers of any :class:`~lstmlab.Cell` through the readable loop
(:func:`lstmlab.nn.recurrent.run`) with torch's calling convention: (T, B, ·) or batch-first or
unbatched input, or a ``PackedSequence``; an initial state ``(num_layers * num_directions, B, ·)``
per state part; inter-layer dropout; recurrent dropout and zoneout (:mod:`lstmlab.nn.regularizers`).
Parameters are the stack's own, named ``{cell parameter}_l{k}`` and ``..._l{k}_reverse`` as torch
names them (``weight_ih_l0``, ``weight_hh_l1_reverse``, ``weight_ci_l0``), so torch state dicts
load as they are.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from lstmlab.nn import dispatch
from lstmlab.nn._checks import (
    check_bool,
    check_positive_int,
    check_state,
    has_values,
    qualified,
    state_parts,
)
from lstmlab.nn.cells.base import Cell, Gates
from lstmlab.nn.recurrent import run, time_major
from lstmlab.nn.regularizers import check_probability, recurrent_dropout_mask, zoneout_keep


class Stack(nn.Module):
    """Layers of cells, optionally bidirectional, run like ``torch.nn.LSTM``.

    Args:
        make_cell: builds the cell of one layer and direction from its input size.
        input_size: features of the input.
        num_layers: layers stacked; layer k > 0 reads the (concatenated) outputs of layer k-1.
        batch_first: (B, T, ·) input and output instead of (T, B, ·).
        dropout: dropout on the outputs of every layer but the last, while training.
        bidirectional: a second cell per layer reads each sequence backwards; outputs are
            concatenated [forward, backward] on the feature axis.
        recurrent_dropout: variational dropout on h_{t-1} where it meets the recurrent weights
            (Gal & Ghahramani 2016): one mask per sequence, layer and direction, the same at
            every step; while training only. In [0, 1).
        zoneout: each unit of h (and c, for LSTM cells: the first ``cell.zoned_state_parts``
            state parts) keeps its previous value with this probability at each step while
            training (Krueger et al. 2016); in evaluation h_t = z h_{t-1} + (1 - z) h_t, the
            expectation. In [0, 1).

    Both regularisers keep the fused kernels (standard LSTM included: it leaves torch's kernel
    for lstmlab's). Masks come from torch's global generator, once per call, in the Stack, so
    every path sees the same ones (:mod:`lstmlab.nn.regularizers`).

    ``forward(input, hx=None, *, lengths=None, return_gates=False)``:
        input: (T, B, input_size) (batch-first: (B, T, input_size)), unbatched (T, input_size),
            or a ``PackedSequence``.
        hx: the initial state in torch's form: one tensor (num_layers * D, B, size) for a one-part
            state (GRU, RNN) or a tuple of them (LSTM: ``(h_0, c_0)``); ``None`` for zeros.
        lengths: (B,) valid steps per sequence, any order (an alternative to packing).
        Returns ``(output, h_n)`` like torch -- ``h_n`` a tensor or a tuple as ``hx`` -- and, with
        ``return_gates``, a third item: one gate dict per layer and direction (index
        ``layer * D + direction``), each gate laid out like the output with ``hidden_size``
        features.

    Example -- a user's cell, stacked and bidirectional for free::

        >>> stack = Stack(lambda n: MGU(n, 32), input_size=8, num_layers=2, bidirectional=True)
        >>> out, h_n = stack(torch.randn(10, 4, 8))      # out (10, 4, 64), h_n (4, 4, 32)
    """

    def __init__(
        self,
        make_cell: Callable[[int], Cell],
        input_size: int,
        num_layers: int = 1,
        *,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ) -> None:
        super().__init__()
        if not callable(make_cell):
            raise TypeError(
                f"make_cell must be a callable input_size -> Cell, got {qualified(make_cell)}"
            )
        self.input_size = check_positive_int("input_size", input_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, (int, float))
            or not 0 <= dropout <= 1
        ):
            raise ValueError(f"dropout must be a number in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout acts between layers, so with num_layers=1 it does nothing "
                f"(got dropout={dropout})",
                stacklevel=3,
            )
        check_bool("batch_first", batch_first)
        self.batch_first, self.dropout, self.bidirectional = (
            batch_first,
            float(dropout),
            bidirectional,
        )
        self.recurrent_dropout = check_probability("recurrent_dropout", recurrent_dropout)
        self.zoneout = check_probability("zoneout", zoneout)
        directions = 2 if bidirectional else 1
        # Parameter names in torch's order, all and per layer and direction (torch's
        # `_flat_weights_names` and `_all_weights`, which torch.nn.utils and torch.ao read).
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        cells: list[Cell] = []
        size = input_size
        for layer in range(num_layers):
            for direction in range(directions):
                cell = make_cell(size)
                if not isinstance(cell, Cell):
                    raise TypeError(f"make_cell must return an lstmlab.Cell, got {qualified(cell)}")
                if cell.input_size != size:
                    raise ValueError(
                        f"make_cell({size}) must return a cell with "
                        f"input_size={size}; got input_size={cell.input_size}"
                    )
                if cells and cell.state_sizes != cells[0].state_sizes:
                    raise ValueError(
                        f"make_cell must give every layer the same state sizes; "
                        f"got {cells[0].state_sizes} and {cell.state_sizes}"
                    )
                self._adopt(cell, f"_l{layer}" + ("_reverse" if direction else ""))
                cells.append(cell)
            size = directions * cell.output_size
        # Cells are kept out of the module tree so that the parameters appear once, under
        # torch's names; `_cells()` re-points each cell at the stack's current tensors.
        self._cell_list: tuple[Cell, ...] = tuple(cells)
        self.hidden_size, self.output_size = cells[0].hidden_size, cells[0].output_size

    def _adopt(self, cell: Cell, suffix: str) -> None:
        """Register the cell's parameters and buffers on the stack under torch-style names."""
        binding: list[tuple[nn.Module, str, str, str]] = []
        names: list[str] = []
        for kind, members in (
            ("_parameters", cell.named_parameters()),
            ("_buffers", cell.named_buffers()),
        ):
            for path, tensor in members:
                name = path.replace(".", "_") + suffix
                if kind == "_parameters":
                    self.register_parameter(name, cast(nn.Parameter, tensor))
                    names.append(name)
                else:
                    self.register_buffer(name, tensor)
                owner, _, leaf = path.rpartition(".")
                binding.append((cell.get_submodule(owner), kind, leaf, name))
        cell.__dict__["_stack_binding"] = binding  # a plain list, not a submodule
        self._flat_weights_names.extend(names)
        self._all_weights.append(names)

    @property
    def _flat_weights(self) -> list[Tensor | None]:
        """The parameters in torch's order (per layer and direction: ``w_ih, w_hh, b_ih, b_hh``,
        then ``w_hr`` and the variants' own), as ``torch.nn.LSTM._flat_weights`` lists them.
        Read afresh at each access, so a tensor put in a parameter's place (``weight_norm``,
        ``functional_call``) is the one listed; ``None`` where a name has no tensor."""
        return [getattr(self, name, None) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """The parameters per layer and direction, as ``torch.nn.LSTM.all_weights``."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    @property
    def cells(self) -> tuple[Cell, ...]:
        """The cells, ``layer * num_directions + direction``, sharing the stack's parameters."""
        return self._cells()

    def _cells(self) -> tuple[Cell, ...]:
        # Re-point every cell at the stack's tensors: `.to()`, `load_state_dict(assign=True)` or
        # `torch.func.functional_call` may have replaced them since the cells were built.
        for cell in self._cell_list:
            for module, kind, leaf, name in cell.__dict__["_stack_binding"]:
                tensors, tensor = getattr(module, kind), getattr(self, name)
                if tensors[leaf] is not tensor:  # no write when nothing changed: a traced
                    tensors[leaf] = tensor  # forward (torch.export) then has no side effects
            if cell.training != self.training:
                cell.train(self.training)
        return self._cell_list

    def train(self, mode: bool = True) -> Stack:
        """As ``nn.Module.train``, and the cells (kept out of the module tree) follow."""
        super().train(mode)
        for cell in getattr(self, "_cell_list", ()):  # () while __init__ builds them
            cell.train(mode)
        return self

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def flatten_parameters(self) -> None:
        """Nothing to do (kept so code written for ``torch.nn.LSTM`` runs unchanged)."""

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: Tensor | tuple[Tensor, ...] | None = None,
        *,
        lengths: Tensor | Sequence[int] | None = None,
        return_gates: bool = False,
    ):
        cells = self._cells()
        x, layout = time_major(self, input, lengths, self.batch_first)  # (T, B, I)
        steps, batch, batched, lengths = x.shape[0], x.shape[1], layout.batched, layout.lengths
        if lengths is not None and has_values(lengths) and bool((lengths == steps).all()):
            lengths = None  # nothing is padded: skip the masking
        parts = self._initial_state(hx, cells[0], batch, batched, x)  # each (L*D, B, size)
        regularized = self.zoneout > 0 or (self.recurrent_dropout > 0 and self.training)
        whole = None if return_gates or regularized else self._whole_stack(x, parts, lengths)
        if whole is not None:  # one call for every layer and direction
            x, h_n = whole
            all_gates: list[Gates] = []
        else:
            x, h_n, all_gates = self._layer_by_layer(cells, x, parts, lengths, return_gates)
        if not batched:
            h_n = tuple(s.squeeze(1) for s in h_n)
        h_n = h_n[0] if len(h_n) == 1 else h_n
        output, gates_out = layout(x), [{k: layout(g) for k, g in gs.items()} for gs in all_gates]
        return (output, h_n, gates_out) if return_gates else (output, h_n)

    def _initial_state(
        self, hx, cell: Cell, batch: int, batched: bool, x: Tensor
    ) -> tuple[Tensor, ...]:
        """hx in torch's form -> the state parts, each (num_layers * D, B, size)."""
        count = self.num_layers * self.num_directions
        if hx is None:
            return tuple(
                torch.zeros(count, batch, size, dtype=x.dtype, device=x.device)
                for size in cell.state_sizes
            )
        parts = state_parts(hx, "hx")
        parts = check_state(parts, cell.state_sizes, batch, batched, x, name="hx", lead=(count,))
        return parts if batched else tuple(p.unsqueeze(1) for p in parts)  # (L*D, 1, size)

    def _layer_by_layer(
        self,
        cells: tuple[Cell, ...],
        x: Tensor,
        parts: tuple[Tensor, ...],
        lengths: Tensor | None,
        return_gates: bool,
    ):
        """Each layer and direction through its fused operation, or the readable loop."""
        directions, finals, all_gates = self.num_directions, [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                x = F.dropout(x, self.dropout, training=True)
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                cell, state, reverse = cells[k], tuple(p[k] for p in parts), direction == 1
                masks = self._masks(cell, x)
                op = None if return_gates else dispatch.sequence_op(cell, x, masked=bool(masks))
                if op is not None:
                    out, final = op(cell, x, state, lengths, reverse, **masks)
                    gates: Gates = {}
                else:
                    out, final, gates = run(
                        cell, x, state, lengths, reverse=reverse, keep_gates=return_gates, **masks
                    )
                outputs.append(out)
                finals.append(final)
                all_gates.append(gates)
            x = outputs[0] if directions == 1 else torch.cat(outputs, dim=-1)  # (T, B, D*O)
        # Per state part: (num_layers * D, B, size), the layout torch uses for h_n and c_n.
        return x, tuple(torch.stack(p) for p in zip(*finals)), all_gates

    def _masks(self, cell: Cell, x: Tensor) -> dict[str, Any]:
        """This call's recurrent-dropout mask (B, P) and zoneout keep weights (T, B, size) for h
        and c, for one layer and direction: drawn here, once, whichever path then runs."""
        steps, batch = x.shape[0], x.shape[1]
        masks: dict[str, Tensor | tuple[Tensor, ...]] = {}
        if self.recurrent_dropout > 0 and self.training:
            masks["recurrent_mask"] = recurrent_dropout_mask(
                self.recurrent_dropout, batch, cell.state_sizes[0], x
            )
        if self.zoneout > 0:
            masks["zoneout"] = zoneout_keep(
                self.zoneout,
                steps,
                batch,
                cell.state_sizes[: cell.zoned_state_parts],
                x,
                self.training,
            )
        return masks

    def _whole_stack(self, x: Tensor, parts: tuple[Tensor, ...], lengths: Tensor | None):
        """A fused operation for the whole stack, where one exists (see LSTM); else None."""
        return None

    def extra_repr(self) -> str:
        regularizers = {"recurrent_dropout": self.recurrent_dropout, "zoneout": self.zoneout}
        return (
            f"cell={self._cell_list[0]!r}, input_size={self.input_size}, "
            f"num_layers={self.num_layers}, batch_first={self.batch_first}, "
            f"dropout={self.dropout}, bidirectional={self.bidirectional}"
            + "".join(f", {k}={v}" for k, v in regularizers.items() if v)
        )
