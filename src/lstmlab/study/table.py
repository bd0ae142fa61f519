"""A study's results: ``results.csv``, ``results.md`` (mean ± std over seeds, Welch's t-test
against the baseline) and ``boxplot.png`` (``lstmlab study``)."""

from __future__ import annotations

import csv
import dataclasses
import math
import statistics
from pathlib import Path

from lstmlab.study.runs import PER_RUN
from lstmlab.study.settings import Study
from lstmlab.study.stats import welch_t_test

HIGHER_IS_BETTER = {"accuracy"}


def write_results(results: list[dict], study: Study, target: int, out: Path) -> list[dict]:
    """``results.csv``, ``results.md`` and ``boxplot.png`` from the runs' ``result.json``."""
    by_cell = {
        c: sorted((r for r in results if r["cell"] == c), key=lambda r: r["seed"])
        for c in study.cells
    }
    names = list(dict.fromkeys(k for r in results for k in r["valid"]))  # in the task's order
    metric = study.metric or ("accuracy" if "accuracy" in names else "loss")
    if metric not in names:
        raise ValueError(
            f"metric {metric!r} is not reported by this task; it reports {', '.join(names)}"
        )
    baseline = "lstm" if "lstm" in by_cell else study.cells[0]
    rows = []
    for cell, runs in by_cell.items():
        row = {
            "cell": cell,
            "hidden_size": runs[0]["hidden_size"],
            "params": runs[0]["params"],
            "params_vs_target": runs[0]["params"] / target - 1,
            "lr": runs[0]["lr"],
            "runs": len(runs),
            "diverged": sum(r.get("diverged", False) for r in runs),
            "steps": statistics.fmean(r["steps"] for r in runs),
            "seconds": statistics.fmean(r["seconds"] for r in runs),
        }
        for name in [metric] + [n for n in names if n != metric]:
            values = [r["valid"].get(name, math.nan) for r in runs]
            finite = all(math.isfinite(v) for v in values)  # a diverged seed: no mean
            row[f"{name}_mean"] = statistics.fmean(values) if finite else math.nan
            row[f"{name}_std"] = (
                statistics.stdev(values) if finite and len(values) > 1 else math.nan
            )
        mine, theirs = (
            [r["valid"].get(metric, math.nan) for r in x] for x in (runs, by_cell[baseline])
        )
        row["values"] = ";".join(f"{v:.6g}" for v in mine)
        testable = (
            cell != baseline
            and min(len(mine), len(theirs)) > 1
            and all(math.isfinite(v) for v in mine + theirs)
        )
        row["t"], row["df"], row["p"] = welch_t_test(mine, theirs) if testable else (math.nan,) * 3
        rows.append(row)
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "results.md").write_text(_markdown(rows, study, target, metric, names, baseline))
    from lstmlab.viz.study_plots import plot_study

    finals = {c: [r["valid"].get(metric, math.nan) for r in runs] for c, runs in by_cell.items()}
    try:  # the tables must not be lost to a missing plot
        plot_study(
            {c: [v for v in values if math.isfinite(v)] for c, values in finals.items()},
            out / "boxplot.png",
            ylabel=f"final validation {metric}",
            title=f"{study.base.task}: {len(by_cell)} cells, {target} parameters",
        )
    except ImportError as e:
        print(f"no box plot: {e}")
    return rows


def _markdown(
    rows: list[dict], study: Study, target: int, metric: str, names: list[str], baseline: str
) -> str:
    defaults = dataclasses.asdict(type(study.base)())
    settings = ", ".join(
        f"{k}={v}"
        for k, v in dataclasses.asdict(study.base).items()
        if k not in (*PER_RUN, "task", "hidden_size") and v != defaults[k]
    )
    better = max if metric in HIGHER_IS_BETTER else min
    finite = [r for r in rows if math.isfinite(r[f"{metric}_mean"])]
    best = better(finite, key=lambda r: r[f"{metric}_mean"])["cell"] if finite else None
    others = [n for n in names if n != metric]
    lines = [
        f"# Study: task {study.base.task}",
        "",
        f"Settings: {settings or 'defaults'}; {study.seeds} seeds; "
        f"about {target} parameters per model; "
        + (
            f"learning rate: best of {study.lr_search} log-uniform draws in "
            f"[{study.lr_range[0]:g}, {study.lr_range[1]:g}] on seed 0 (lowest validation "
            "loss)"
            if study.lr_search
            else f"learning rate {study.base.lr:g}"
        )
        + f". Final validation metrics, mean ± std over seeds; t, p: Welch's t-test of "
        f"{metric} against {baseline}.",
        "",
        f"| cell | hidden | params | vs target | lr | runs | steps | **{metric}** | "
        + " | ".join(others)
        + (" | " if others else "")
        + "t | p |",
        "|---" * (10 + len(others)) + "|",
    ]
    for r in rows:
        cells = [
            f"{r[f'{n}_mean']:.4g}"
            + ("" if math.isnan(r[f"{n}_std"]) else f" ± {r[f'{n}_std']:.2g}")
            for n in [metric] + others
        ]
        if r["cell"] == best:
            cells[0] = f"**{cells[0]}**"
        test = ["", ""] if math.isnan(r["p"]) else [f"{r['t']:.2f}", f"{r['p']:.3g}"]
        lines.append(
            "| "
            + " | ".join(
                [
                    r["cell"],
                    str(r["hidden_size"]),
                    str(r["params"]),
                    f"{100 * r['params_vs_target']:+.1f} %",
                    f"{r['lr']:.3g}",
                    f"{r['runs']}" + (f" ({r['diverged']} diverged)" if r["diverged"] else ""),
                    f"{r['steps']:.0f}",
                    *cells,
                    *test,
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"
