"""The one readable time loop: any cell, over time.

:func:`run` is the reference every fast path is tested against; :class:`Recurrent` wraps it as a
module (batch-first or not, unbatched input, state in and out, gates at every step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch._higher_order_ops.scan import scan
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstmlab.nn._checks import (
    ShapeError,
    check_input,
    check_lengths,
    check_state,
    has_values,
    qualified,
    state_parts,
)
from lstmlab.nn.cells.base import Cell, Gates, State
from lstmlab.nn.regularizers import dropped_step, zone


def _where(live: Tensor, new: Tensor, old: Tensor | float) -> Tensor:
    """``new`` for the sequences still running (``live``, shape (B,)), ``old`` for the others."""
    return torch.where(live.view(-1, *[1] * (new.dim() - 1)), new, old)


def run(
    cell: Cell,
    x: Tensor,
    state: State,
    lengths: Tensor | None = None,
    *,
    reverse: bool = False,
    keep_gates: bool = False,
    recurrent_mask: Tensor | None = None,
    zoneout: Sequence[Tensor] = (),
) -> tuple[Tensor, State, Gates]:
    """Run ``cell`` over a time-major sequence.

    Args:
        cell: any :class:`~lstmlab.Cell`.
        x: inputs, (T, B, input_size).
        state: the initial state, parts (B, ...).
        lengths: (B,) long, each in [1, T], any order; ``None`` if every sequence has T steps.
            Steps at or past a sequence's length leave its state alone and output zeros.
        reverse: run from each sequence's last valid step back to its first.
        keep_gates: collect the gate activations of every step.
        recurrent_mask: (B, P) variational recurrent dropout (Gal & Ghahramani 2016): the step's
            recurrent weights see ``h_{t-1} ⊙ recurrent_mask`` at every step
            (:func:`lstmlab.nn.regularizers.dropped_step`).
        zoneout: keep weights (Krueger et al. 2016), one (T, B, size) tensor in the order of time
            per leading state part (h, then c): ``part_t = k_t ⊙ part_{t-1} + (1 - k_t) ⊙ new``,
            and the step's output is the zoned state's (:meth:`Cell.output`: the zoned h).

    Returns:
        outputs (T, B, output_size); the final state (each sequence's state after its last valid
        step); gates ``{name: (T, B, hidden_size)}`` (empty unless ``keep_gates``).
    """
    if torch.compiler.is_exporting() and not keep_gates:
        out, state = _scanned(cell, x, state, lengths, reverse, recurrent_mask, zoneout)
        return out, state, {}
    steps = x.shape[0]
    outputs: list[Tensor] = []
    gates_by_step: list[Gates] = []
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    # A reversed sequence starts at its own last step: the masked steps before it leave the
    # initial state untouched, so padding never leaks into any sequence.
    if lengths is None or lengths.numel() == 0:
        shortest = steps
    else:  # traced (no values to read): mask every step, which gives the same result
        shortest = int(lengths.min()) if has_values(lengths) else 0
    for t in order:
        # (B,) bool once some sequences ended
        live = None if lengths is None or t < shortest else lengths > t
        keep = tuple(k[t] for k in zoneout)
        h, state, gates = _step(cell, x[t], state, live, recurrent_mask, keep)
        outputs.append(h)
        if keep_gates:
            gates_by_step.append(gates)
    if reverse:  # back to the order of time
        outputs.reverse()
        gates_by_step.reverse()
    stacked = (
        {k: torch.stack([g[k] for g in gates_by_step]) for k in gates_by_step[0]}
        if keep_gates
        else {}
    )
    return torch.stack(outputs), state, stacked


def _step(
    cell: Cell,
    x_t: Tensor,
    state: State,
    live: Tensor | None,
    recurrent_mask: Tensor | None,
    keep: Sequence[Tensor],
) -> tuple[Tensor, State, Gates]:
    """One step of :func:`run`: ``live`` (B,) bool marks the sequences still running (``None``:
    all), ``keep`` the step's zoneout weights per zoned state part."""
    # Padding never reaches the cell: even inf there must not turn gradients into NaN.
    if live is not None:
        x_t = _where(live, x_t, 0.0)
    if recurrent_mask is None:
        h, new_state, gates = cell.step(x_t, state)
    else:
        h, new_state, gates = dropped_step(cell, x_t, state, recurrent_mask)
    if keep:
        zoned = tuple(zone(n, s, k) for n, s, k in zip(new_state, state, keep))
        new_state = (*zoned, *new_state[len(zoned) :])
        h = cell.output(new_state)  # the zoned state's output
    if live is not None:
        h = _where(live, h, 0.0)
        new_state = tuple(_where(live, n, s) for n, s in zip(new_state, state))
        gates = {k: _where(live, g, 0.0) for k, g in gates.items()}
    return h, new_state, gates


def _scanned(
    cell: Cell,
    x: Tensor,
    state: State,
    lengths: Tensor | None,
    reverse: bool,
    recurrent_mask: Tensor | None,
    zoneout: Sequence[Tensor],
) -> tuple[Tensor, State]:
    """:func:`run`'s loop (no gates) as one ``scan`` over time (``torch._higher_order_ops.scan``):
    traced once whatever the number of steps, so ``torch.export`` keeps the sequence length
    dynamic and ONNX gets a ``Scan`` node. A reversed run scans each sequence reversed within
    its length, then reverses the outputs back."""
    if reverse:
        x, zoneout = reverse_padded(x, lengths), [reverse_padded(k, lengths) for k in zoneout]
    steps = torch.arange(x.shape[0], device=x.device).unsqueeze(1)  # (T, 1)
    live = None if lengths is None else steps < lengths  # (T, B)
    xs = (x, *zoneout) if live is None else (x, live, *zoneout)

    def body(carry: State, inputs: tuple[Tensor, ...]) -> tuple[State, Tensor]:
        x_t, *rest = inputs
        live_t = None if live is None else rest.pop(0)
        h, new_state, _ = _step(cell, x_t, tuple(carry), live_t, recurrent_mask, rest)
        # A view as a scan output (a cell's h may be a slice of a larger tensor) trips the
        # exporter's decomposition: hand out fresh tensors.
        return tuple(s.contiguous() for s in new_state), h.clone()

    final, out = scan(body, tuple(state), xs)
    return (reverse_padded(out, lengths) if reverse else out), tuple(final)


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of a (T, B, ·) batch within its own length; padding stays at the
    end."""
    if lengths is None:
        return x.flip(0)
    steps = torch.arange(x.shape[0], device=x.device).unsqueeze(1)  # (T, 1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (T, B)
    return x.gather(0, index.unsqueeze(-1).expand_as(x))


class Recurrent(nn.Module):
    """Run a cell over sequences: the readable reference loop as a module.

    Args:
        cell: the cell for one step.
        batch_first: inputs and outputs are (B, T, ·) instead of (T, B, ·).
        reverse: run each sequence backwards from its last valid step.

    ``forward(input, state=None, lengths=None, *, return_gates=False)``:
        input: (T, B, input_size), or (B, T, input_size) if ``batch_first``, unbatched
            (T, input_size), or a ``PackedSequence`` (the output is then packed alike).
        state: a tuple of parts (B, size) -- (size,) unbatched -- or a tensor for a one-part
            state; ``None`` for zeros.
        lengths: (B,) integers in [1, T], any order; steps past a length are padding.
        Returns ``(output, state)`` or, with ``return_gates``, ``(output, state, gates)`` where
        output is (T, B, output_size) (batch-first if asked), state a tuple of parts, and gates
        ``{name: (T, B, hidden_size)}`` laid out like the output.

    Example::

        >>> rnn = Recurrent(LSTMCell(8, 16, coupled=True), batch_first=True)
        >>> x = torch.randn(4, 10, 8)
        >>> out, (h, c), gates = rnn(x, lengths=[10, 3, 7, 1], return_gates=True)
        >>> out.shape, gates["forget"].shape
        (torch.Size([4, 10, 16]), torch.Size([4, 10, 16]))
    """

    def __init__(self, cell: Cell, *, batch_first: bool = False, reverse: bool = False) -> None:
        super().__init__()
        if not isinstance(cell, Cell):
            raise TypeError(f"cell must be an lstmlab.Cell, got {qualified(cell)}")
        self.cell, self.batch_first, self.reverse = cell, batch_first, reverse
        self.input_size = cell.input_size

    def forward(
        self,
        input: Tensor | PackedSequence,
        state: State | Tensor | None = None,
        lengths: Tensor | Sequence[int] | None = None,
        *,
        return_gates: bool = False,
    ):
        x, layout = time_major(self, input, lengths, self.batch_first)  # (T, B, I)
        batch, batched = x.shape[1], layout.batched
        if state is None:
            state = self.cell.initial_state(batch, dtype=x.dtype, device=x.device)
        else:
            parts = state_parts(state, "state")
            state = check_state(parts, self.cell.state_sizes, batch, batched, x, name="state")
            if not batched:
                state = tuple(s.unsqueeze(0) for s in state)
        out, state, gates = run(
            self.cell, x, state, layout.lengths, reverse=self.reverse, keep_gates=return_gates
        )
        y, laid_gates = layout(out), {k: layout(g) for k, g in gates.items()}
        if not batched:
            state = tuple(s.squeeze(0) for s in state)
        return (y, state, laid_gates) if return_gates else (y, state)

    def extra_repr(self) -> str:
        return f"batch_first={self.batch_first}, reverse={self.reverse}"


@dataclass(frozen=True)
class Layout:
    """How a layer's caller laid out its input, so outputs go back in the same form.

    ``lengths`` are the checked valid steps per sequence ((B,), or ``None``: all full).
    Calling it turns a time-major (T, B, ·) tensor into the caller's form: (B, T, ·) if
    batch-first, (T, ·) if unbatched, or a ``PackedSequence`` like the input.
    """

    batched: bool
    batch_first: bool
    lengths: Tensor | None
    packed: PackedSequence | None

    def __call__(self, y: Tensor) -> Tensor | PackedSequence:
        if self.packed is not None:
            assert self.lengths is not None  # a PackedSequence always carries its lengths
            return _repack(y, self.lengths, self.packed)
        if not self.batched:
            return y.squeeze(1)  # (T, 1, ·) -> (T, ·)
        return y.transpose(0, 1) if self.batch_first else y  # -> (B, T, ·)


def time_major(
    module: nn.Module,
    input: Tensor | PackedSequence,
    lengths: Tensor | Sequence[int] | None,
    batch_first: bool,
) -> tuple[Tensor, Layout]:
    """A layer's input, checked, as (T, B, I) (unbatched: (T, 1, I)), and its :class:`Layout`.

    ``input`` is (T, B, I), (B, T, I) with ``batch_first``, (T, I) unbatched, or a
    ``PackedSequence`` (which carries its own lengths: giving ``lengths`` too is a
    ``ValueError``, as are lengths with unbatched input or out of range).
    """
    packed = input if isinstance(input, PackedSequence) else None
    if isinstance(input, PackedSequence):
        if lengths is not None:
            raise ValueError(
                "lengths must not be given with a PackedSequence, which carries its own"
            )
        x, lengths = pad_packed_sequence(input)  # (T, B, I), (B,)
        check_input(x, module, rank=3, check_nan=True)
        batched = True
    else:
        batched = check_input(input, module, rank=3, check_nan=True)
        x = input if batched else input.unsqueeze(1)
        if batch_first and batched:
            x = x.transpose(0, 1)  # (B, T, I) -> (T, B, I)
    if x.shape[0] == 0:  # an empty batch runs (as in torch); a sequence of no steps does not
        given = tuple(input.shape) if isinstance(input, Tensor) else tuple(x.shape)
        raise ShapeError(
            "Expected sequence length to be larger than 0 in RNN: input must have at least "
            f"one time step; got shape {given}"
            + (" (batch_first: (B, T, input_size))" if batch_first and batched else "")
        )
    if lengths is not None:
        if not batched:
            raise ValueError(
                "lengths applies to batched input only; unbatched input is one "
                "sequence of its full length"
            )
        lengths = check_lengths(lengths, x.shape[1], x.shape[0], x.device)
    return x, Layout(batched, batch_first, lengths, packed)


def _repack(y: Tensor, lengths: Tensor, like: PackedSequence) -> PackedSequence:
    """A padded (T, B, ·) tensor as a PackedSequence with ``like``'s batch sizes and order."""
    order = like.sorted_indices
    if order is not None:
        y, lengths = y.index_select(1, order), lengths.index_select(0, order.to(lengths.device))
    data = pack_padded_sequence(y, lengths.cpu(), enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)
