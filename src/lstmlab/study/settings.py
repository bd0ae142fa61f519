"""A study's settings (:class:`Study`), the cells of Greff et al.'s comparison, and the
learning-rate search's draws."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from lstmlab.nn.registry import VARIANTS
from lstmlab.train import TrainConfig

GREFF_CELLS = (
    "lstm",
    "peephole",
    "coupled",
    "nig",
    "nfg",
    "nog",
    "niaf",
    "noaf",
    "fgr",
    "gru",
    "rnn",
)


@dataclass
class Study:
    """A study's settings; :func:`run_study` carries it out.

    Args:
        base: the settings every run shares (task, data, steps, optimiser, ...;
            :func:`~lstmlab.train.settings.task_config` gives a task's defaults, as
            ``lstmlab study`` does); its ``cell``, ``seed``, ``out`` and ``minutes`` are set
            per run, its ``hidden_size`` gives the default parameter target, its ``lr`` the rate
            when there is no search.
        cells: names from :data:`lstmlab.nn.registry.VARIANTS`.
        seeds: runs per cell, seeds ``0 .. seeds - 1``.
        params: the parameter target; ``None``: the ``lstm`` model at ``base.hidden_size``.
        lr_search: K > 0 searches K log-uniform learning rates in ``lr_range`` on seed 0.
        budget_minutes: the study's wall time, split evenly over the runs (0: none).
        workers: runs trained at once, each in its own process.
        metric: the headline validation metric (``"accuracy"``, ``"loss"``, ...); ``None``:
            ``accuracy`` where the task reports one, else ``loss``.
        out: the study's folder.
    """

    base: TrainConfig
    cells: Sequence[str] = GREFF_CELLS
    seeds: int = 5
    params: int | None = None
    lr_search: int = 0
    lr_range: tuple[float, float] = (1e-4, 3e-2)
    budget_minutes: float = 0.0
    workers: int = 1
    metric: str | None = None
    out: str = "studies/study"

    def __post_init__(self) -> None:
        self.cells = list(self.cells)
        if not self.cells or (unknown := [c for c in self.cells if c not in VARIANTS]):
            raise ValueError(
                f"cells must be names of `lstmlab cells` ({', '.join(VARIANTS)}); "
                f"got {', '.join(self.cells) or 'none'}"
                + (f" (unknown: {', '.join(unknown)})" if self.cells else "")
            )
        if len(set(self.cells)) != len(self.cells):
            raise ValueError(f"cells must not repeat; got {', '.join(self.cells)}")
        for name in ("seeds", "workers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.params is not None and (not isinstance(self.params, int) or self.params < 1):
            raise ValueError(f"params must be a positive integer or None, got {self.params!r}")
        if not isinstance(self.lr_search, int) or self.lr_search < 0:
            raise ValueError(
                f"lr_search must be an integer >= 0 (0: no search), got {self.lr_search!r}"
            )
        low, high = self.lr_range
        if not 0 < low < high:
            raise ValueError(
                f"lr_range must be (low, high) with 0 < low < high, got {self.lr_range}"
            )
        if not self.budget_minutes >= 0:
            raise ValueError(f"budget must be >= 0 minutes, got {self.budget_minutes!r}")
        if self.base.tie_weights:
            raise ValueError(
                "tie_weights fixes hidden_size = embed_size, so hidden sizes cannot "
                "be matched to a parameter budget; run the study without it"
            )


def learning_rates(study: Study) -> list[float]:
    """The K log-uniform draws of the search (seeded: the same on every start), 3 digits."""
    draw, (low, high) = random.Random(0), study.lr_range
    draws = [
        float(f"{math.exp(draw.uniform(math.log(low), math.log(high))):.3g}")
        for _ in range(study.lr_search)
    ]
    return sorted(set(draws))  # a repeat after rounding would be the same run
