"""The copying memory problem (Arjovsky, Shah & Bengio 2016)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmlab.nn._checks import check_positive_int


class CopyTask:
    """The copying memory problem (Arjovsky, Shah & Bengio 2016, sec. 4.1), exactly as the paper
    sets it.

    Ten categories ``a_0 ... a_9``, here the ids 0-9: ``a_0 ... a_7`` are symbols, ``a_8`` the
    blank (:attr:`BLANK`), ``a_9`` the delimiter (:attr:`DELIMITER`). An input has ``T + 20``
    steps: 10 symbols drawn uniformly, independently, with replacement from ``a_0 ... a_7``; then
    ``T - 1`` blanks; one delimiter; 10 blanks. The target has ``T + 10`` blanks, then the 10
    symbols in their order: the symbols must be held for ``T`` steps.

    Inputs: token ids ``(B, T + 20)`` (``vocab_size = input_size = 10``); targets ``(B, T + 20)``;
    prediction ``(B, T + 20, 10)`` logits, one per step (``every_step``). Loss: the cross-entropy
    averaged over every step and sequence. Metrics: ``"cross_entropy"``, ``"baseline"`` and
    ``"accuracy"`` (of the 10 recalled symbols). Baseline: the memoryless strategy -- blank for
    ``T + 10`` steps, then a uniform guess among the 8 symbols -- scores
    ``10 log(8) / (T + 20)``.

    Example::

        >>> task = CopyTask(delay=5)
        >>> x, y = task.batch(1, torch.Generator().manual_seed(0))     # (1, 25), (1, 25)
        >>> x[0].tolist()
        [4, 7, 5, 0, 3, 3, 3, 7, 1, 3, 8, 8, 8, 8, 9, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8]
        >>> y[0].tolist()
        [8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 4, 7, 5, 0, 3, 3, 3, 7, 1, 3]
    """

    name = "copy"
    SYMBOLS, BLANK, DELIMITER, RECALL = 8, 8, 9, 10  # a_0..a_7, a_8, a_9; 10 symbols to copy
    vocab_size = input_size = output_size = 10
    every_step = True

    def __init__(self, delay: int = 100) -> None:
        self.delay = check_positive_int("delay", delay)  # T >= 1: the delimiter needs it
        self.length = self.delay + 2 * self.RECALL
        self.baseline = self.RECALL * math.log(self.SYMBOLS) / self.length

    def batch(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        check_positive_int("batch_size", batch_size)
        B, T, K = batch_size, self.delay, self.RECALL
        symbols = torch.randint(0, self.SYMBOLS, (B, K), generator=generator)  # (B, 10)
        inputs = torch.full((B, T + 2 * K), self.BLANK, dtype=torch.long)  # (B, T + 20)
        inputs[:, :K] = symbols
        inputs[:, K + T - 1] = self.DELIMITER  # after the 10 symbols, T - 1 blanks
        targets = torch.full_like(inputs, self.BLANK)
        targets[:, T + K :] = symbols  # T + 10 blanks, then the symbols
        return inputs, targets

    def _check(self, prediction: Tensor, target: Tensor) -> None:
        expected = (*target.shape, self.output_size)
        if tuple(prediction.shape) != expected or target.dim() != 2:
            raise ValueError(
                f"prediction must have shape (B, T + 20, {self.output_size}) = "
                f"{expected}, one vector per step; got {tuple(prediction.shape)}"
            )

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        self._check(prediction, target)
        return F.cross_entropy(prediction.flatten(0, 1), target.flatten())

    def metrics(self, prediction: Tensor, target: Tensor) -> dict[str, float]:
        recalled = prediction[:, -self.RECALL :].argmax(-1) == target[:, -self.RECALL :]
        return {
            "cross_entropy": self.loss(prediction, target).item(),
            "baseline": self.baseline,
            "accuracy": recalled.float().mean().item(),
        }

    def __repr__(self) -> str:
        return f"CopyTask(delay={self.delay})"
