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
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import csv
import dataclasses
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint._read import _read_meta
from .registry import VARIANTS
from .stats import welch_t_test
from .train import TrainConfig, TrainingError, evaluate_checkpoint, make_job, train

GREFF_CELLS = ("lstm", "peephole", "coupled", "nig", "nfg", "nog", "niaf", "noaf", "fgr", "gru",
               "rnn")
PER_RUN = ("cell", "seed", "out", "minutes")     # TrainConfig fields the study sets for each run
HIGHER_IS_BETTER = {"accuracy"}


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


@dataclass(frozen=True)
class Run:
    """One training run of a study: a cell, a seed, a learning rate, a matched hidden size."""
    cell: str
    seed: int
    lr: float
    hidden_size: int
    params: int
    lr_in_name: bool = False                     # a search study names runs by their rate

    @property
    def name(self) -> str:
        return f"{self.cell}-s{self.seed}" + (f"-lr{self.lr:.3g}" if self.lr_in_name else "")


def parameter_count(model_config: dict, cell: str, hidden_size: int) -> int:
    """``sum(p.numel())`` of the model ``model_config`` describes with this cell and hidden size.
    Built on the meta device: shapes only, no memory, no initialisation cost."""
    from .models import build_model

    with torch.device("meta"):
        model = build_model({**model_config, "cell": cell, "hidden_size": hidden_size})
    return sum(p.numel() for p in model.parameters())


def match_hidden_size(model_config: dict, cell: str, target: int) -> tuple[int, int]:
    """The hidden size whose model has the parameter count closest to ``target``, and that count.

    The count grows with the hidden size, so doubling brackets the target and bisection finds
    the smallest size reaching it; that size or the one below is the closest.
    """
    def count(h: int) -> int:
        return parameter_count(model_config, cell, h)

    high = 1
    while count(high) < target:
        high *= 2
    low = high // 2                              # count(low) < target, or low = 0
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if count(middle) >= target else (middle, high)
    best = min((h for h in (high - 1, high) if h >= 1), key=lambda h: abs(count(h) - target))
    return best, count(best)


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


def _execute(runs: list[Run], study: Study, minutes: float, out: Path,
             on_result: Callable[[dict], None] | None) -> list[dict]:
    """Train the runs not yet finished, ``study.workers`` at a time; all the runs' results."""
    jobs = [(dataclasses.replace(study.base, cell=r.cell, seed=r.seed, lr=r.lr, minutes=minutes,
                                 hidden_size=r.hidden_size, out=str(out / "runs" / r.name)),
             {**dataclasses.asdict(r), "name": r.name}) for r in runs]
    todo = [job for job in jobs if not (Path(job[0].out) / "result.json").exists()]
    report = on_result or (lambda result: None)
    if study.workers == 1 or len(todo) <= 1:
        for cfg, info in todo:
            report(train_run(cfg, info))
    else:
        threads = max(1, _cores() // study.workers)         # workers * threads <= cores
        with futures.ProcessPoolExecutor(min(study.workers, len(todo)),
                                         multiprocessing.get_context("spawn"),
                                         initializer=_worker_start,
                                         initargs=(threads, os.getpid())) as pool:
            pending = [pool.submit(train_run, cfg, info) for cfg, info in todo]
            try:
                for future in futures.as_completed(pending):
                    report(future.result())
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
    return [json.loads((Path(cfg.out) / "result.json").read_text()) for cfg, _ in jobs]


def _worker_start(threads: int, parent: int) -> None:
    """A worker's setup: its share of the cores, and a watchdog that ends it when the study's
    process is gone (killed with SIGKILL, the pool cannot stop its workers; they would train
    on, and a restarted study would write the same run's checkpoint from two processes)."""
    torch.set_num_threads(threads)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="lstmlab-study-watchdog").start()


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def train_run(cfg: TrainConfig, info: dict) -> dict:
    """Train one run to the end -- from its last checkpoint if it has one -- then write
    ``result.json`` (``info``, the steps done, seconds, the final validation metrics).

    A run whose loss became NaN or infinite (:class:`~lstmlab.train.TrainingError`, e.g. a
    search's largest learning rate) is finished too: ``"diverged": true``, validation loss
    ``inf``, its other metrics missing (NaN in the table), never picked by the search."""
    folder = Path(cfg.out)
    try:
        step = _read_meta(folder / "checkpoint")[1]["step"]
    except (ValueError, FileNotFoundError):
        step = None
    if step is None and folder.exists():
        shutil.rmtree(folder)                    # killed before its first checkpoint: start over
    if step is not None:                         # drop what was logged after the checkpoint
        log = folder / "metrics.jsonl"
        records = [line for line in log.read_text().splitlines()
                   if json.loads(line)["step"] <= step] if log.exists() else []
        log.write_text("".join(line + "\n" for line in records))
    start = time.perf_counter()
    # A run killed after its last checkpoint but before result.json has nothing left to train:
    # its final metrics are those of the checkpoint.
    try:
        metrics = train(cfg, resume=step is not None, progress=False) \
            or evaluate_checkpoint(folder / "checkpoint")
        diverged = False
    except TrainingError:
        metrics, diverged = {"loss": math.inf}, True
    try:
        steps = _read_meta(folder / "checkpoint")[1]["step"]
    except (ValueError, FileNotFoundError):    # diverged before its first checkpoint
        steps = 0
    result = {**info, "steps": steps, "seconds": time.perf_counter() - start,
              "resumed": step is not None, "diverged": diverged, "valid": metrics}
    (folder / "result.json.tmp").write_text(json.dumps(result, indent=1))
    os.replace(folder / "result.json.tmp", folder / "result.json")     # the run is finished
    return result


# --- the results ---

def write_results(results: list[dict], study: Study, target: int, out: Path) -> list[dict]:
    """``results.csv``, ``results.md`` and ``boxplot.png`` from the runs' ``result.json``."""
    by_cell = {c: sorted((r for r in results if r["cell"] == c), key=lambda r: r["seed"])
               for c in study.cells}
    names = list(dict.fromkeys(k for r in results for k in r["valid"]))   # in the task's order
    metric = study.metric or ("accuracy" if "accuracy" in names else "loss")
    if metric not in names:
        raise ValueError(f"metric {metric!r} is not reported by this task; it reports "
                         f"{', '.join(names)}")
    baseline = "lstm" if "lstm" in by_cell else study.cells[0]
    rows = []
    for cell, runs in by_cell.items():
        row = {"cell": cell, "hidden_size": runs[0]["hidden_size"], "params": runs[0]["params"],
               "params_vs_target": runs[0]["params"] / target - 1, "lr": runs[0]["lr"],
               "runs": len(runs), "diverged": sum(r.get("diverged", False) for r in runs),
               "steps": statistics.fmean(r["steps"] for r in runs),
               "seconds": statistics.fmean(r["seconds"] for r in runs)}
        for name in [metric] + [n for n in names if n != metric]:
            values = [r["valid"].get(name, math.nan) for r in runs]
            finite = all(math.isfinite(v) for v in values)     # a diverged seed: no mean
            row[f"{name}_mean"] = statistics.fmean(values) if finite else math.nan
            row[f"{name}_std"] = statistics.stdev(values) if finite and len(values) > 1 \
                else math.nan
        mine, theirs = ([r["valid"].get(metric, math.nan) for r in x]
                        for x in (runs, by_cell[baseline]))
        row["values"] = ";".join(f"{v:.6g}" for v in mine)
        testable = cell != baseline and min(len(mine), len(theirs)) > 1 \
            and all(math.isfinite(v) for v in mine + theirs)
        row["t"], row["df"], row["p"] = welch_t_test(mine, theirs) if testable else (math.nan,) * 3
        rows.append(row)
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "results.md").write_text(_markdown(rows, study, target, metric, names, baseline))
    from .viz.study_plots import plot_study

    finals = {c: [r["valid"].get(metric, math.nan) for r in runs] for c, runs in by_cell.items()}
    try:                                          # the tables must not be lost to a missing plot
        plot_study({c: [v for v in values if math.isfinite(v)] for c, values in finals.items()},
                   out / "boxplot.png", ylabel=f"final validation {metric}",
                   title=f"{study.base.task}: {len(by_cell)} cells, {target} parameters")
    except ImportError as e:
        print(f"no box plot: {e}")
    return rows


def _markdown(rows: list[dict], study: Study, target: int, metric: str, names: list[str],
              baseline: str) -> str:
    defaults = dataclasses.asdict(type(study.base)())
    settings = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(study.base).items()
                         if k not in (*PER_RUN, "task", "hidden_size") and v != defaults[k])
    better = max if metric in HIGHER_IS_BETTER else min
    finite = [r for r in rows if math.isfinite(r[f"{metric}_mean"])]
    best = better(finite, key=lambda r: r[f"{metric}_mean"])["cell"] if finite else None
    others = [n for n in names if n != metric]
    lines = [f"# Study: task {study.base.task}", "",
             f"Settings: {settings or 'defaults'}; {study.seeds} seeds; "
             f"about {target} parameters per model; "
             + (f"learning rate: best of {study.lr_search} log-uniform draws in "
                f"[{study.lr_range[0]:g}, {study.lr_range[1]:g}] on seed 0 (lowest validation "
                "loss)" if study.lr_search else f"learning rate {study.base.lr:g}")
             + f". Final validation metrics, mean ± std over seeds; t, p: Welch's t-test of "
             f"{metric} against {baseline}.", "",
             f"| cell | hidden | params | vs target | lr | runs | steps | **{metric}** | "
             + " | ".join(others) + (" | " if others else "") + "t | p |",
             "|---" * (10 + len(others)) + "|"]
    for r in rows:
        cells = [f"{r[f'{n}_mean']:.4g}" + ("" if math.isnan(r[f"{n}_std"]) else
                                             f" ± {r[f'{n}_std']:.2g}") for n in [metric] + others]
        if r["cell"] == best:
            cells[0] = f"**{cells[0]}**"
        test = ["", ""] if math.isnan(r["p"]) else [f"{r['t']:.2f}", f"{r['p']:.3g}"]
        lines.append("| " + " | ".join(
            [r["cell"], str(r["hidden_size"]), str(r["params"]),
             f"{100 * r['params_vs_target']:+.1f} %", f"{r['lr']:.3g}",
             f"{r['runs']}" + (f" ({r['diverged']} diverged)" if r["diverged"] else ""),
             f"{r['steps']:.0f}", *cells, *test]) + " |")
    return "\n".join(lines) + "\n"


# --- the command line ---

def parse_budget(text: str) -> float:
    """Minutes from ``"90s"``, ``"10m"``, ``"1.5h"`` or a bare number of minutes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*", text)
    if not match:
        raise ValueError(f"budget must be a duration like 90s, 10m or 1.5h; got {text!r}")
    return float(match[1]) * {"s": 1 / 60, "m": 1, "": 1, "h": 60}[match[2]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cells", default=",".join(GREFF_CELLS),
                        help="comma-separated cells (default: Greff et al.'s eight, gru, rnn)")
    parser.add_argument("--seeds", type=int, default=5, help="runs per cell (default: 5)")
    parser.add_argument("--budget", type=parse_budget, default=0.0,
                        help="the study's wall time, split evenly over the runs: 90s, 10m, 1.5h "
                             "(default: none; --steps alone)")
    parser.add_argument("--params", type=int, default=None,
                        help="parameters per model (default: the lstm model at --hidden-size)")
    parser.add_argument("--lr-search", type=int, default=0, metavar="K",
                        help="try K log-uniform learning rates per cell on seed 0 (default: 0)")
    parser.add_argument("--lr-min", type=float, default=1e-4, help="search range (default: 1e-4)")
    parser.add_argument("--lr-max", type=float, default=3e-2, help="search range (default: 3e-2)")
    parser.add_argument("--workers", type=int, default=1, help="runs at once (default: 1)")
    parser.add_argument("--metric", default=None,
                        help="headline metric (default: accuracy if the task has it, else loss)")
    parser.add_argument("--out", default="studies/study", help="the study's folder")
    for f in dataclasses.fields(TrainConfig):       # the shared training settings
        if f.name in PER_RUN:
            continue
        flag, help = "--" + f.name.replace("_", "-"), f"{f.metadata['help']} (default: {f.default})"
        if isinstance(f.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=help)
        else:
            parser.add_argument(flag, type=type(f.default) if f.default is not None else str,
                                default=None, help=help)


def run(args: argparse.Namespace) -> int:
    base = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                          if f.name not in PER_RUN and getattr(args, f.name) is not None})
    study = Study(base, cells=[c.strip() for c in args.cells.split(",") if c.strip()],
                  seeds=args.seeds, params=args.params, lr_search=args.lr_search,
                  lr_range=(args.lr_min, args.lr_max), budget_minutes=args.budget,
                  workers=args.workers, metric=args.metric, out=args.out)

    def report(r: dict) -> None:
        print(f"  {r['name']:22} {r['steps']:6} steps {r['seconds']:7.1f} s  "
              + "  ".join(f"{k} {v:.4g}" for k, v in r["valid"].items()), flush=True)

    run_study(study, on_result=report)
    print("\n" + (Path(study.out) / "results.md").read_text()
          + f"\n{study.out}/results.csv, results.md, boxplot.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lstmlab study", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
