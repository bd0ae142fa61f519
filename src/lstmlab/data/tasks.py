"""The synthetic tasks by name (:func:`make_task`) and the adding problem.

The conventions every task follows are in :mod:`lstmlab.data.task`; the recall task is in
:mod:`.recall`, the copying problem in :mod:`.copying`, sequential MNIST in :mod:`.mnist`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmlab.data.copying import CopyTask
from lstmlab.data.recall import FACTS, FILLERS, LANGUAGES, QUERY, RecallTask
from lstmlab.data.task import Task, check_prediction
from lstmlab.nn._checks import check_positive_int

__all__ = [
    "Task",
    "AddingTask",
    "RecallTask",
    "CopyTask",
    "TASKS",
    "make_task",
    "LANGUAGES",
    "FACTS",
    "QUERY",
    "FILLERS",
]


class AddingTask:
    """The adding problem (Hochreiter & Schmidhuber 1997, exp. 4, in the form of Le et al. 2015).

    Each step carries a value ``u_t ~ U(0, 1)`` and a marker ``m_t``, 1 at exactly two steps --
    one in the first half ``[0, T // 2)``, one in the second half ``[T // 2, T)`` -- and 0
    elsewhere. The target is ``sum_t m_t u_t``: the first marked value must be held across up to
    ``T - 1`` steps of distractors.

    Inputs ``(B, T, 2)`` (channel 0 the values, channel 1 the markers); targets ``(B, 1)``;
    prediction ``(B, 1)``. Loss: mean squared error; metric ``"mse"``. Baseline: always
    predicting the mean 1 scores ``Var(u + u') = 2/12 = 1/6 ≈ 0.167``.

    Example::

        >>> task = AddingTask(length=50)
        >>> x, y = task.batch(32, torch.Generator().manual_seed(0))   # (32, 50, 2), (32, 1)
        >>> loss = task.loss(torch.ones(32, 1), y)      # predicting the mean: ≈ task.baseline
    """

    name = "adding"
    input_size = 2
    vocab_size = None
    output_size = 1
    baseline = 1 / 6
    every_step = False

    def __init__(self, length: int = 100) -> None:
        self.length = check_positive_int("length", length, minimum=2)  # both halves non-empty

    def batch(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        check_positive_int("batch_size", batch_size)
        B, T, half = batch_size, self.length, self.length // 2
        values = torch.rand(B, T, generator=generator)  # (B, T)
        first = torch.randint(0, half, (B, 1), generator=generator)  # (B, 1)
        second = torch.randint(half, T, (B, 1), generator=generator)  # (B, 1)
        markers = torch.zeros_like(values).scatter_(1, first, 1.0).scatter_(1, second, 1.0)
        target = (values * markers).sum(1, keepdim=True)  # (B, 1)
        return torch.stack([values, markers], dim=-1), target  # (B, T, 2)

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        check_prediction(prediction, target, self.output_size)
        return F.mse_loss(prediction, target)

    def metrics(self, prediction: Tensor, target: Tensor) -> dict[str, float]:
        return {"mse": self.loss(prediction, target).item()}

    def __repr__(self) -> str:
        return f"AddingTask(length={self.length})"


def _smnist(**kwargs) -> Task:
    from lstmlab.data.mnist import SequentialMNIST

    return SequentialMNIST(**kwargs)


TASKS: dict[str, Callable[..., Task]] = {
    "adding": AddingTask,
    "recall": RecallTask,
    "copy": CopyTask,
    "smnist": _smnist,
}


def make_task(name: str, **kwargs) -> Task:
    """Build the named task, e.g. ``make_task("recall", gap=40)``."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    return TASKS[name](**kwargs)
