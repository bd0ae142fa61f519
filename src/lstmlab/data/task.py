"""Synthetic sequence tasks, drawn on the fly: the long-range problems LSTMs were made for.

Every task follows :class:`Task`. Conventions shared by all of them:

- **Inputs**, batch-first. A float task gives ``(B, T, input_size)`` in the default float dtype
  and has ``vocab_size = None``. A token task gives int64 ids ``(B, T)`` in ``[0, vocab_size)``
  -- embed them (``nn.Embedding(task.vocab_size, E)``) -- and sets ``input_size = vocab_size``,
  the width of one step one-hot encoded. So ``input_size`` is always the width of a step as a
  vector, and ``vocab_size is not None`` says the batch holds ids.
- **Prediction**: one vector per sequence, ``(B, output_size)``: the model's output at the last
  step (``output[:, -1]`` of a batch-first layer) through a linear head. A task with
  ``every_step = True`` (``copy``) wants one vector per step instead, ``(B, T, output_size)``,
  and targets ``(B, T)``.
- **Determinism**: ``batch`` draws only from the (CPU) generator it is given, so the same seed
  gives the same batch.
- **baseline**: the expected loss of the best predictor that ignores the input; a model below it
  has learned to use the sequence.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Task(Protocol):
    """What a trainer needs from a task (see the module docstring for the conventions).

    Attributes:
        name: the key in :data:`TASKS`.
        input_size: features per step (for a token task, ``vocab_size``).
        vocab_size: number of token ids for a token task; ``None`` for float inputs.
        output_size: features of the prediction ``(B, output_size)``.
        baseline: the loss of the trivial, input-blind predictor.
        every_step: predictions are ``(B, T, output_size)``, one per step, not ``(B, output_size)``.
    """

    name: str
    input_size: int
    output_size: int
    baseline: float
    every_step: bool

    @property
    def vocab_size(self) -> int | None:  # read-only here: a task may fix it as None or an int
        ...

    def batch(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """A fresh batch ``(inputs, targets)``, batch-first, drawn from ``generator`` alone."""
        ...

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        """The training loss (a scalar) of ``prediction`` ``(B, output_size)``."""
        ...

    def metrics(self, prediction: Tensor, target: Tensor) -> dict[str, float]:
        """Human-facing scores of ``prediction``, e.g. ``{"accuracy": 0.93}``."""
        ...


def check_prediction(prediction: Tensor, target: Tensor, size: int) -> None:
    expected = (target.shape[0], size)
    if tuple(prediction.shape) != expected:
        raise ValueError(
            f"prediction must have shape {expected} (one vector per sequence, from "
            f"the last step); got {tuple(prediction.shape)}"
        )
