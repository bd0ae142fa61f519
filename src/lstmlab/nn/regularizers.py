"""Regularisers of the recurrence itself: variational recurrent dropout and zoneout.

- Recurrent dropout (Gal & Ghahramani 2016, "A Theoretically Grounded Application of Dropout in
  Recurrent Neural Networks"): one dropout mask per sequence on h_{t-1} where it meets the
  recurrent weights, the same mask at every step; inverted scaling (kept units × 1/(1-p)), so
  evaluation uses no mask at all.
- Zoneout (Krueger et al. 2016, "Zoneout: Regularizing RNNs by Randomly Preserving Hidden
  Activations"): while training each unit of h (and of the LSTM's c) keeps its previous value
  with probability z at each step; in evaluation every unit takes the expectation
  ``z ⊙ previous + (1 - z) ⊙ new``. Both cases are ``k ⊙ previous + (1 - k) ⊙ new`` with a keep
  weight ``k``: Bernoulli(z) draws while training, the constant z in evaluation.

:class:`~lstmlab.Stack` draws the masks once per call, per layer and direction, and hands the same
tensors to whichever path runs the layer: :func:`lstmlab.nn.recurrent.run` (the reference, which
uses :func:`dropped_step` and :func:`zone` below) or a fused kernel.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lstmlab.nn.cells.base import Cell, Gates, State


def check_probability(name: str, p: object) -> float:
    """A probability in [0, 1): 1 would drop (or freeze) every unit."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {p!r}")
    return float(p)


def recurrent_dropout_mask(p: float, batch: int, size: int, like: Tensor) -> Tensor:
    """Gal & Ghahramani's mask: (batch, size), each entry 0 with probability p, else 1/(1-p)."""
    keep = torch.full((batch, size), 1.0 - p, dtype=like.dtype, device=like.device)
    return torch.bernoulli(keep) / (1.0 - p)


def zoneout_keep(
    z: float, steps: int, batch: int, sizes: tuple[int, ...], like: Tensor, training: bool
) -> tuple[Tensor, ...]:
    """Keep weights, one (steps, batch, size) tensor per zoned state part, in the order of time:
    Bernoulli(z) draws while training, the constant z (the expectation) in evaluation."""
    full = [torch.full((steps, batch, n), z, dtype=like.dtype, device=like.device) for n in sizes]
    return tuple(torch.bernoulli(k) if training else k for k in full)


def dropped_step(cell: Cell, x: Tensor, state: State, mask: Tensor) -> tuple[Tensor, State, Gates]:
    """One step of ``cell`` whose recurrent weights see ``h_{t-1} ⊙ mask`` (mask (B, P)).

    The step reads state part 0 (h) dropped; an LSTM or an RNN reads h only through W_hh, so this
    is exactly Gal & Ghahramani's recurrent dropout. A GRU also carries h_{t-1} unweighted into
    ``h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}``, a clockwork RNN's idle modules keep it whole
    (:meth:`Cell.carry`); Gal & Ghahramani drop the weight products only, so the carry gets back
    what the mask took from it.
    """
    h_prev = state[0]
    h, new_state, gates = cell.step(x, (h_prev * mask, *state[1:]))
    carry = cell.carry(gates)
    if carry is not None:
        h = h + carry * (h_prev - h_prev * mask)  # c ⊙ (m ⊙ h_{t-1}) -> c ⊙ h_{t-1}
        new_state = (h, *new_state[1:])
    return h, new_state, gates


def zone(new: Tensor, old: Tensor, keep: Tensor | float) -> Tensor:
    """Krueger et al. 2016: ``keep ⊙ old + (1 - keep) ⊙ new`` for one state part, (B, size);
    ``keep`` (B, size) or a number."""
    return keep * old + (1 - keep) * new


__all__ = ["check_probability", "recurrent_dropout_mask", "zoneout_keep", "dropped_step", "zone"]
