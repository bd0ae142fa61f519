"""Carrying out a study: the plan (hidden sizes matched to one parameter budget, the
learning-rate search), its runs, and its tables. :func:`run_study` is the whole of it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lstmlab.study.params import match_hidden_size, parameter_count
from lstmlab.study.runs import PER_RUN, Run, _execute
from lstmlab.study.settings import Study, learning_rates
from lstmlab.study.table import write_results
from lstmlab.train import TrainConfig, make_job


def run_study(study: Study, *, on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Carry out ``study`` (or finish it, if it was stopped) and write its tables and box plot.

    ``on_result(result)`` is called after every run trained now (not for runs found finished).
    Returns one row per cell, as in ``results.csv``.
    """
    out = Path(study.out)
    model_config = make_job(study.base).model.config()  # the real model, built once
    target = study.params or parameter_count(model_config, "lstm", study.base.hidden_size)
    sizes = {c: match_hidden_size(model_config, c, target) for c in study.cells}
    rates = learning_rates(study) if study.lr_search else [study.base.lr]
    runs = len(study.cells) * (len(rates) + study.seeds - 1)
    plan: dict[str, Any] = {
        "cells": study.cells,
        "seeds": study.seeds,
        "target_params": target,
        "hidden_sizes": {c: h for c, (h, _) in sizes.items()},
        "learning_rates": rates,
        "metric": study.metric,
        "runs": runs,
        "minutes_per_run": study.budget_minutes * study.workers / runs,
        "base": {k: v for k, v in dataclasses.asdict(study.base).items() if k not in PER_RUN},
    }
    plan = _same_plan(out / "study.json", plan)
    minutes = plan["minutes_per_run"]
    print(
        f"{runs} runs, {study.workers} at a time, target {target} parameters"
        + (f", {minutes:.2f} min per run" if minutes else "")
    )
    for cell, (h, n) in sizes.items():
        print(f"  {cell:10} hidden {h:5}  {n:9} parameters ({100 * (n / target - 1):+.1f} %)")

    def runs_of(seeds: range, lr_of: Callable[[str], float]) -> list[Run]:
        return [
            Run(c, s, lr_of(c), *sizes[c], lr_in_name=bool(study.lr_search))
            for c in study.cells
            for s in seeds
        ]

    search = (
        [Run(c, 0, lr, *sizes[c], lr_in_name=True) for c in study.cells for lr in rates]
        if study.lr_search
        else []
    )
    done = _execute(search, study, minutes, out, on_result)
    best = (
        {
            c: min((r for r in done if r["cell"] == c), key=lambda r: r["valid"]["loss"])["lr"]
            for c in study.cells
        }
        if study.lr_search
        else {c: study.base.lr for c in study.cells}
    )
    first = range(1, study.seeds) if study.lr_search else range(study.seeds)
    done += _execute(runs_of(first, lambda c: best[c]), study, minutes, out, on_result)
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
        raise ValueError(
            f"{path.parent} holds a different study (changed: {', '.join(changed)}); "
            "resume it with the same settings, or give a new --out"
        )
    return saved  # the time per run stays what it was, whatever --workers says now
