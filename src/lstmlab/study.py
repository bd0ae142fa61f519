"""Which LSTM variant should I use? Every cell on one task, one budget, several seeds: one table.

    lstmlab study --cells lstm,peephole,coupled,gru,rnn --task recall --gap 30 --seeds 5 \\
        --steps 3000 --budget 30m --lr-search 4 --workers 2 --out studies/recall

In the spirit of Greff et al. 2015 ("LSTM: A Search Space Odyssey"), every cell is trained by
:func:`lstmlab.train.train` -- an ordinary run, in ``OUT/runs/<cell>-s<seed>[-lr<lr>]/`` -- with
everything else held equal:

- **Task and data**: the same :class:`~lstmlab.train.TrainConfig` settings (any task the trainer
  offers); a seed gives every cell the same training batches, and the validation data is shared.
- **Parameters**: each cell's hidden size is solved (bisection on the real model's
  ``sum(p.numel())``, built on the meta device) so that the whole model comes closest to the
  target: ``--params``, or by default the ``lstm`` model at ``--hidden-size``. The table states
  every count.
- **Steps and time**: ``--steps`` for every run; ``--budget`` is the study's wall time, split
  evenly: each run gets ``minutes = budget * workers / runs`` and stops at whichever limit comes
  first (the table's ``steps`` column shows which did). Model building, evaluation and kernel
  compilation are not counted, so the study overruns the budget a little.
- **Learning rate**: ``--lr``, or with ``--lr-search K`` Greff et al.'s random search: K rates
  drawn log-uniformly from ``[--lr-min, --lr-max]`` (the same K for every cell), each tried on
  seed 0; the one with the lowest final validation loss then trains the other seeds.

Runs: cells x seeds, or with a search cells x (K + seeds - 1). Results: ``results.csv`` and
``results.md`` (mean ± std over seeds of every final validation metric, hidden size, parameter
count, and Welch's t-test of the headline metric -- ``--metric``, by default ``accuracy`` where
the task reports one, else ``loss`` -- against the vanilla ``lstm``), and ``boxplot.png``.

A run is finished once its ``result.json`` exists; a study started again with the same command
skips finished runs and resumes unfinished ones from their last checkpoint
(``train(..., resume=True)``; a resumed run's time limit starts afresh), so a killed study loses
at most the steps since a checkpoint. ``OUT/study.json`` holds the plan; a different study in
the same folder is refused.

The command line (``lstmlab study``) is :mod:`lstmlab.study_cli`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .registry import VARIANTS
from .study_params import match_hidden_size, parameter_count
from .study_runs import PER_RUN, Run, _execute, train_run
from .study_table import write_results
from .train import TrainConfig, make_job

# The public names of the study, wherever they live (study_params, study_runs, study_table).
__all__ = ["GREFF_CELLS", "Study", "Run", "parameter_count", "match_hidden_size",
           "learning_rates", "run_study", "train_run", "write_results"]

GREFF_CELLS = ("lstm", "peephole", "coupled", "nig", "nfg", "nog", "niaf", "noaf", "fgr", "gru",
               "rnn")


@dataclass
class Study:
    """A study's settings; :func:`run_study` carries it out.

    Args:
        base: the settings every run shares (task, data, steps, optimiser, ...); its ``cell``,
            ``seed``, ``out`` and ``minutes`` are set per run, its ``hidden_size`` gives the
            default parameter target, its ``lr`` the rate when there is no search.
        cells: names from :data:`lstmlab.registry.VARIANTS`.
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
            raise ValueError(f"cells must be names of `lstmlab cells` ({', '.join(VARIANTS)}); "
                             f"got {', '.join(self.cells) or 'none'}"
                             + (f" (unknown: {', '.join(unknown)})" if self.cells else ""))
        if len(set(self.cells)) != len(self.cells):
            raise ValueError(f"cells must not repeat; got {', '.join(self.cells)}")
        for name in ("seeds", "workers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.params is not None and (not isinstance(self.params, int) or self.params < 1):
            raise ValueError(f"params must be a positive integer or None, got {self.params!r}")
        if not isinstance(self.lr_search, int) or self.lr_search < 0:
            raise ValueError(f"lr_search must be an integer >= 0 (0: no search), got "
                             f"{self.lr_search!r}")
        low, high = self.lr_range
        if not 0 < low < high:
            raise ValueError(f"lr_range must be (low, high) with 0 < low < high, got "
                             f"{self.lr_range}")
        if not self.budget_minutes >= 0:
            raise ValueError(f"budget must be >= 0 minutes, got {self.budget_minutes!r}")
        if self.base.tie_weights:
            raise ValueError("tie_weights fixes hidden_size = embed_size, so hidden sizes cannot "
                             "be matched to a parameter budget; run the study without it")


def learning_rates(study: Study) -> list[float]:
    """The K log-uniform draws of the search (seeded: the same on every start), 3 digits."""
    draw, (low, high) = random.Random(0), study.lr_range
    draws = [float(f"{math.exp(draw.uniform(math.log(low), math.log(high))):.3g}")
             for _ in range(study.lr_search)]
    return sorted(set(draws))              # a repeat after rounding would be the same run


def run_study(study: Study, *, on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Carry out ``study`` (or finish it, if it was stopped) and write its tables and box plot.

    ``on_result(result)`` is called after every run trained now (not for runs found finished).
    Returns one row per cell, as in ``results.csv``.
    """
    out = Path(study.out)
    model_config = make_job(study.base).model.config()       # the real model, built once
    target = study.params or parameter_count(model_config, "lstm", study.base.hidden_size)
    sizes = {c: match_hidden_size(model_config, c, target) for c in study.cells}
    rates = learning_rates(study) if study.lr_search else [study.base.lr]
    runs = len(study.cells) * (len(rates) + study.seeds - 1)
    plan = {"cells": study.cells, "seeds": study.seeds, "target_params": target,
            "hidden_sizes": {c: h for c, (h, _) in sizes.items()}, "learning_rates": rates,
            "metric": study.metric, "runs": runs,
            "minutes_per_run": study.budget_minutes * study.workers / runs,
            "base": {k: v for k, v in dataclasses.asdict(study.base).items() if k not in PER_RUN}}
    plan = _same_plan(out / "study.json", plan)
    minutes = plan["minutes_per_run"]
    print(f"{runs} runs, {study.workers} at a time, target {target} parameters"
          + (f", {minutes:.2f} min per run" if minutes else ""))
    for cell, (h, n) in sizes.items():
        print(f"  {cell:10} hidden {h:5}  {n:9} parameters ({100 * (n / target - 1):+.1f} %)")

    def runs_of(seeds: range, lr_of: Callable[[str], float]) -> list[Run]:
        return [Run(c, s, lr_of(c), *sizes[c], lr_in_name=bool(study.lr_search))
                for c in study.cells for s in seeds]

    search = [Run(c, 0, lr, *sizes[c], lr_in_name=True) for c in study.cells for lr in rates] \
        if study.lr_search else []
    done = _execute(search, study, minutes, out, on_result)
    best = {c: min((r for r in done if r["cell"] == c), key=lambda r: r["valid"]["loss"])["lr"]
            for c in study.cells} if study.lr_search else {c: study.base.lr for c in study.cells}
    first = range(1, study.seeds) if study.lr_search else range(study.seeds)
    done += _execute(runs_of(first, best.get), study, minutes, out, on_result)
    final = [r for r in done if r["lr"] == best[r["cell"]]]
    return write_results(final, study, target, out)


def _same_plan(path: Path, plan: dict) -> dict:
    """Write the plan on the first start; on a later one, insist it is the same study."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(plan, indent=1))
        return plan
    saved = json.loads(path.read_text())
    if isinstance(plan.get("base"), dict) and isinstance(saved.get("base"), dict):
        # Settings added to TrainConfig after the study began read as their defaults, so a
        # newer lstmlab resumes an older study.
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        saved = {**saved, "base": {**{k: defaults.get(k) for k in plan["base"]}, **saved["base"]}}
    if changed := sorted(k for k in plan if k != "minutes_per_run" and plan[k] != saved.get(k)):
        raise ValueError(f"{path.parent} holds a different study (changed: {', '.join(changed)}); "
                         "resume it with the same settings, or give a new --out")
    return saved      # the time per run stays what it was, whatever --workers says now
