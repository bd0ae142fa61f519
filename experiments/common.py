"""What every experiment script shares: its flags, resumable runs, curves, the results file.

A script trains one or more runs under ``experiments/runs/<name>/`` and writes
``experiments/results/<name>.json`` (``<name>-quick.json`` with ``--quick``). Interrupted
(Ctrl-C, a kill, or ``--minutes`` spent), it is simply started again: a run with a checkpoint
continues from it (``train(cfg, resume=True)``), a finished run is only re-evaluated.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from lstmlab.train import TrainConfig, evaluate_checkpoint, make_job, train
from lstmlab.train.checkpoint import load_checkpoint
from lstmlab.viz.plots import read_metrics

HERE = Path(__file__).resolve().parent
RUNS, RESULTS = HERE / "runs", HERE / "results"


def arguments(
    description: str, parser: argparse.ArgumentParser | None = None
) -> argparse.Namespace:
    """The flags every script has (``--quick``, ``--minutes``), added to ``parser``, parsed."""
    parser = parser or argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few steps of every run at full size: checks the script and "
        "measures the time per step, to project the full run",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=0.0,
        help="stop (resumably) after this much training time in all (0: none)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's); 1 when the cores are shared: "
        "two threads on two busy cores stall each other badly",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def runs_dir(name: str, quick: bool) -> Path:
    """The folder of a script's runs; a quick check starts afresh every time."""
    if quick:
        shutil.rmtree(RUNS / f"{name}-quick", ignore_errors=True)
        return RUNS / f"{name}-quick"
    return RUNS / name


@dataclass
class Budget:
    """The time left to a script's runs (``--minutes``; 0 means no limit)."""

    minutes: float
    start: float = field(default_factory=time.perf_counter)

    def left(self) -> float:
        """Minutes left, at least a few seconds' worth; ``0`` (no limit) if none was set."""
        if not self.minutes:
            return 0.0
        return max(self.minutes - (time.perf_counter() - self.start) / 60, 0.05)

    def spent(self) -> bool:
        return bool(self.minutes) and time.perf_counter() - self.start > 60 * self.minutes


def run(cfg: TrainConfig, budget: Budget) -> dict:
    """Train ``cfg`` to its last step, resuming from its checkpoint if it has one; return
    ``{"step": reached, "done": bool}``. The script's steps and learning-rate schedule hold for
    a resumed run too (a changed schedule applies from the current step; see train's
    ``reschedule``)."""
    ckpt = Path(cfg.out) / "checkpoint"
    start = step_of(ckpt)
    if start < cfg.steps and not budget.spent():
        train(replace(cfg, minutes=budget.left()), resume=start > 0, reschedule=start > 0)
    step = step_of(ckpt)
    return {"step": step, "done": step >= cfg.steps}


def reported(out: str) -> str:
    """The checkpoint a run's test result comes from: ``out/best``, the lowest validation loss
    (early stopping, as the papers report), or ``out/checkpoint`` for a run without one."""
    best = Path(out) / "best"
    return str(best if (best / "checkpoint.json").is_file() else Path(out) / "checkpoint")


# The reference workload and its time on this project's 2-core machine when idle
# (benchmarks/results-cpu-2core.txt): a torch.nn.LSTM training step, B32 T128 H128.
REFERENCE_IDLE_SECONDS = 0.02752


def _reference_step(lstm: torch.nn.LSTM, x: torch.Tensor) -> float:
    start = time.process_time()
    out, _ = lstm(x)
    out.sum().backward()
    return time.process_time() - start


def measure(cfg: TrainConfig, steps: int = 5, evaluate: bool = False) -> dict:
    """Seconds per training step of ``cfg`` (one warm-up step, then ``steps`` timed ones, on a
    fresh job), and with ``evaluate`` of one validation pass.

    Timed on one thread in CPU seconds, which a busy machine inflates far less than wall time
    (two threads on two shared cores stall each other at every parallel barrier). Each timed
    step is paired with a step of a reference workload whose time on this machine idle with
    two threads is known (``REFERENCE_IDLE_SECONDS``), so ``*_idle`` = one-thread CPU time x
    reference idle / reference one-thread CPU time (medians): the estimate for this machine
    idle, assuming the job uses two threads as well as the reference LSTM does.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(cfg.seed)
        job = make_job(cfg)
        model = job.model
        optimizer = (torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD)(
            model.parameters(), lr=cfg.lr
        )
        lstm, x = torch.nn.LSTM(128, 128), torch.randn(128, 32, 128)
        model.train()
        cpus, refs = [], []
        for step in range(steps + 1):
            start = time.process_time()
            loss, _ = job.loss(model, job.batch(step))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip or math.inf)
            optimizer.step()
            cpu = time.process_time() - start
            ref = _reference_step(lstm, x)
            if step:  # step 0 warms up (and may compile)
                cpus.append(cpu)
                refs.append(ref)
        scale = REFERENCE_IDLE_SECONDS / statistics.median(refs)
        timing = {
            "step_seconds_one_thread": statistics.median(cpus),
            "idle_scale": scale,
            "load_average": os.getloadavg()[0],
        }
        timing["step_seconds_idle"] = timing["step_seconds_one_thread"] * scale
        if evaluate:
            model.eval()
            start = time.process_time()
            job.evaluate()
            timing["eval_seconds_one_thread"] = time.process_time() - start
            timing["eval_seconds_idle"] = timing["eval_seconds_one_thread"] * scale
    finally:
        torch.set_num_threads(threads)
    return timing


def step_of(ckpt: Path) -> int:
    """The step a run's checkpoint holds (0 if there is none)."""
    if not ckpt.exists() and not ckpt.with_name(ckpt.name + ".old").exists():
        return 0
    return load_checkpoint(ckpt, restore_rng=False).step


def curve(out: str | Path, key: str) -> list[tuple[int, float]]:
    """``(step, value)`` of ``key`` from a run's metrics.jsonl; a step logged twice (the steps
    after the last checkpoint of an interrupted run are trained again) keeps its last value."""
    values = {r["step"]: r[key] for r in read_metrics(Path(out) / "metrics.jsonl") if key in r}
    return sorted(values.items())


def save(name: str, result: dict, quick: bool) -> Path:
    """Write ``results/<name>.json`` (``-quick`` with ``--quick``) and print where."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}{'-quick' if quick else ''}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {path.relative_to(HERE.parent)}")
    return path


def projection(timing: dict, steps: int, evaluations: int = 0) -> dict:
    """Hours for ``steps`` training steps and ``evaluations`` validation passes at the times
    :func:`measure` found: on this machine idle (two threads), and on one free core."""

    def hours(suffix: str) -> float:
        return (
            timing[f"step_seconds{suffix}"] * steps
            + timing.get(f"eval_seconds{suffix}", 0.0) * evaluations
        ) / 3600

    return {
        "full_steps": steps,
        "evaluations": evaluations,
        "hours_idle": hours("_idle"),
        "hours_one_thread": hours("_one_thread"),
        "timing": timing,
    }


def report_projection(result: dict, projections: list[dict]) -> None:
    """Add the total projected hours of a script's runs to ``result`` and print them."""
    for key in ("hours_idle", "hours_one_thread"):
        result[f"projected_{key}"] = sum(p[key] for p in projections)
    print(
        f"projected full run: {result['projected_hours_idle']:.2f} h on this machine idle "
        f"({result['projected_hours_one_thread']:.2f} h on one thread)"
    )


def language_model(cfg: TrainConfig, budget: Budget, quick: bool, epoch: int, metric: str) -> dict:
    """Train a text run (``--quick``: time it, train 3 steps, project the full cost), then, once
    it has run its course, score the whole test split as the papers do (once, at the end: a run
    that stops for its time budget reports its validation curve only); return the result
    entries: ``status``, ``test`` (when done), ``valid_<metric>_by_epoch`` and, with ``quick``,
    ``projection`` and ``hours_per_epoch_idle``. ``metric`` is ``"perplexity"`` or
    ``"bits_per_token"``; ``epoch`` is steps per epoch."""
    full, result = cfg, {"steps_per_epoch": epoch}
    if quick:
        timing = measure(cfg, steps=3, evaluate=True)
        cfg = replace(cfg, steps=3, eval_every=3)
    result["status"] = run(cfg, budget)
    step, test_seconds = result["status"]["step"], math.nan
    if step:
        result[f"valid_{metric}_by_epoch"] = [
            (s / epoch, v) for s, v in curve(cfg.out, f"valid_{metric}")
        ]
        if result[f"valid_{metric}_by_epoch"]:
            e, v = result[f"valid_{metric}_by_epoch"][-1]
            print(
                f"step {step} (epoch {step / epoch:.2f}): valid "
                f"{metric.replace('_', ' ')} {v:.4g} at epoch {e:.2f}"
            )
    if result["status"]["done"]:
        start = time.perf_counter()
        result["test"] = evaluate_checkpoint(reported(cfg.out), "test")
        test_seconds = time.perf_counter() - start
        print(
            f"test {metric.replace('_', ' ')} {result['test'][metric]:.4g} over "
            f"{result['test']['tokens']} tokens ({reported(cfg.out)})"
        )
    if quick:
        evaluations = full.steps // full.eval_every
        timing["test_wall_seconds"] = test_seconds
        result["projection"] = projection(timing, full.steps, evaluations)
        result["hours_per_epoch_idle"] = (
            timing["step_seconds_idle"] * epoch
            + timing["eval_seconds_idle"] * evaluations * epoch / full.steps
        ) / 3600
        print(f"{result['hours_per_epoch_idle']:.2f} h per epoch on this machine idle")
        report_projection(result, [result["projection"]])
    return result


def check_claims(result: dict, claims: dict[str, bool]) -> None:
    """Record each claim's outcome in ``result["claims"]`` and print PASS or FAIL for it."""
    result["claims"] = claims
    for claim, ok in claims.items():
        print(f"{'PASS' if ok else 'FAIL'}  {claim}")


def task_run(cfg: TrainConfig, budget: Budget, quick: bool) -> dict:
    """One run of a task script: trained (resumably) to its end -- with ``quick``, timed and
    trained 3 steps -- then tested. Returns ``{"status", "test" (once trained), "projection"
    (quick)}``."""
    entry: dict = {}
    if quick:
        entry["projection"] = projection(
            measure(cfg, evaluate=True), cfg.steps, cfg.steps // cfg.eval_every
        )
        cfg = replace(cfg, steps=3, eval_every=3)
    entry["status"] = run(cfg, budget)
    if entry["status"]["step"]:
        entry["test"] = evaluate_checkpoint(reported(cfg.out), "test")
    return entry


@contextmanager
def figure(name: str, quick: bool, result: dict):
    """``with figure("adding", quick, result) as ax:`` -- a 7x4 in. plot, saved on leaving the
    block as ``results/<name>[-quick].png`` (with a grid and a legend), named in ``result``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}{'-quick' if quick else ''}.png"
    fig, ax = plt.subplots(figsize=(7, 4))
    try:
        yield ax
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path)
        result["figure"] = path.name
    finally:
        plt.close(fig)
