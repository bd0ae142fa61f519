"""The variant study: statistics against published values, matched budgets, tables that agree
with the runs' own logs, and a study that resumes without repeating finished runs."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import mpmath
import pytest
import safetensors.torch
import torch

from lstmlab.models.build import build_model
from lstmlab.study import cli as study_cli
from lstmlab.study import match_hidden_size, parameter_count, run_study, train_run
from lstmlab.study.cli import parse_budget
from lstmlab.study.settings import Study
from lstmlab.study.stats import betainc, t_two_sided_p, welch_t_test
from lstmlab.train import TrainConfig, evaluate_checkpoint, load_trained, make_job, train
from lstmlab.train.settings import task_config
from lstmlab.viz.plots import read_metrics

# --- statistics ---


def test_incomplete_beta_matches_mpmath():
    draw = random.Random(0)
    for _ in range(300):
        a, b, x = draw.uniform(0.05, 60), draw.uniform(0.05, 60), draw.random()
        exact = float(mpmath.betainc(a, b, 0, x, regularized=True))
        assert betainc(a, b, x) == pytest.approx(exact, abs=1e-12), (a, b, x)
    assert betainc(2, 3, 0) == 0 and betainc(2, 3, 1) == 1
    with pytest.raises(ValueError, match="0 <= x <= 1"):
        betainc(1, 1, 1.5)


@pytest.mark.parametrize(
    "t, df, p",
    [(12.706, 1, 0.05), (2.228, 10, 0.05), (2.750, 30, 0.01), (1.960, 1e7, 0.05), (0.0, 5, 1.0)],
)
def test_t_distribution_matches_the_printed_table(t, df, p):
    """Two-sided critical values of Student's t, as printed in every statistics table."""
    assert t_two_sided_p(t, df) == pytest.approx(p, abs=2e-4)
    assert t_two_sided_p(-t, df) == t_two_sided_p(t, df)


# Welch's t-test worked examples (Wikipedia, "Welch's t-test", examples 1-3): t, df, p.
A = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
B = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
C = [17.2, 20.9, 22.6, 18.1, 21.7, 21.4, 23.5, 24.2, 14.7, 21.8]
D = [
    21.5,
    22.8,
    21.0,
    23.0,
    21.6,
    23.6,
    22.5,
    20.7,
    23.4,
    21.8,
    20.7,
    21.7,
    21.5,
    22.5,
    23.6,
    21.5,
    22.5,
    23.5,
    21.5,
    21.8,
]
E = [19.8, 20.4, 19.6, 17.8, 18.5, 18.9, 18.3, 18.9, 19.5, 22.0]
F = [
    28.2,
    26.6,
    20.1,
    23.3,
    25.2,
    22.1,
    17.7,
    27.6,
    20.6,
    13.7,
    23.2,
    17.5,
    20.6,
    18.0,
    23.9,
    21.6,
    24.3,
    20.4,
    23.9,
    13.3,
]


@pytest.mark.parametrize(
    "a, b, t, df, p",
    [(A, B, -2.46, 25.0, 0.021), (C, D, -1.57, 9.9, 0.149), (E, F, -2.22, 24.5, 0.036)],
)
def test_welch_matches_published_examples(a, b, t, df, p):
    got = welch_t_test(a, b)
    assert got[0] == pytest.approx(t, abs=0.006)
    assert got[1] == pytest.approx(df, abs=0.06)
    assert got[2] == pytest.approx(p, abs=0.0006)
    # Swapping the samples flips t and keeps df and p.
    back = welch_t_test(b, a)
    assert back[0] == pytest.approx(-got[0]) and back[1:] == pytest.approx(got[1:])


def test_welch_degenerate_cases():
    assert welch_t_test([1.0, 1.0], [1.0, 1.0, 1.0])[2] == 1.0  # no spread, same mean
    t, _, p = welch_t_test([1.0, 1.0], [0.5, 0.5])  # no spread, means differ
    assert t == math.inf and p == 0.0
    with pytest.raises(ValueError, match="at least 2 values"):
        welch_t_test([1.0], [1.0, 2.0])


# --- parameter budgets ---


@pytest.mark.parametrize("task", ["recall", "adding"])
def test_matched_cells_have_the_same_parameter_count_within_5_percent(task):
    """Counts are the real models' (built on the CPU, not the meta device), and the matched hidden
    size is the best one: one unit more or less lands farther from the target."""
    config = make_job(TrainConfig(task=task, gap=5, length=20)).model.config()
    target = parameter_count(config, "lstm", 64)
    for cell in ("lstm", "peephole", "coupled", "gru", "rnn"):
        hidden, count = match_hidden_size(config, cell, target)
        real = build_model({**config, "cell": cell, "hidden_size": hidden})
        assert count == sum(p.numel() for p in real.parameters())
        assert abs(count / target - 1) < 0.05, (cell, hidden, count, target)
        for other in (hidden - 1, hidden + 1):
            assert abs(parameter_count(config, cell, other) - target) >= abs(count - target)
    assert match_hidden_size(config, "lstm", target) == (64, target)
    assert match_hidden_size(config, "rnn", target)[0] > 100  # one matrix set, not four


# --- the study, end to end ---

TINY = dict(
    task="recall",
    gap=3,
    hidden_size=8,
    embed_size=4,
    batch_size=4,
    eval_batches=2,
    steps=6,
    eval_every=3,
    checkpoint_every=3,
)
CLI_TINY = [
    "--task",
    "recall",
    "--gap",
    "3",
    "--hidden-size",
    "8",
    "--embed-size",
    "4",
    "--batch-size",
    "4",
    "--eval-batches",
    "2",
    "--steps",
    "6",
    "--eval-every",
    "3",
    "--checkpoint-every",
    "3",
]


class Stop(Exception):
    pass


def snapshot(folder):
    return {
        p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_tiny_study_resumes_without_repeating_and_its_table_matches_the_logs(tmp_path, capsys):
    out = tmp_path / "study"
    trained = []

    def stop_after_the_first(result):
        trained.append(result["name"])
        raise Stop  # as if the study were killed here

    with pytest.raises(Stop):
        run_study(
            Study(task_config(**TINY), cells=["lstm", "gru", "rnn"], seeds=2, out=str(out)),
            on_result=stop_after_the_first,
        )
    assert trained == ["lstm-s0"]
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["lstm-s0"]
    first = snapshot(out / "runs" / "lstm-s0")

    assert (
        study_cli.main(["--cells", "lstm,gru,rnn", "--seeds", "2", "--out", str(out), *CLI_TINY])
        == 0
    )
    printed = capsys.readouterr().out
    again = [
        n
        for n in ("lstm-s0", "lstm-s1", "gru-s0", "gru-s1", "rnn-s0", "rnn-s1")
        if f"  {n} " in printed
    ]
    assert again == ["lstm-s1", "gru-s0", "gru-s1", "rnn-s0", "rnn-s1"]  # lstm-s0 not re-trained
    assert snapshot(out / "runs" / "lstm-s0") == first  # nor touched

    rows = {r["cell"]: r for r in csv.DictReader((out / "results.csv").open())}
    assert list(rows) == ["lstm", "gru", "rnn"]
    markdown = (out / "results.md").read_text()
    assert markdown in printed
    assert (out / "boxplot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    values = {}
    for cell, row in rows.items():
        logs = [read_metrics(out / "runs" / f"{cell}-s{s}" / "metrics.jsonl") for s in (0, 1)]
        finals = [[r for r in log if "valid_loss" in r][-1] for log in logs]
        assert [r["step"] for r in finals] == [6, 6] and float(row["steps"]) == 6
        for log in logs:  # one record per step: nothing logged twice
            steps = [r["step"] for r in log if "loss" in r]
            assert steps == list(range(1, 7))
        values[cell] = [r["valid_accuracy"] for r in finals]
        assert float(row["accuracy_mean"]) == pytest.approx(statistics.fmean(values[cell]))
        assert float(row["accuracy_std"]) == pytest.approx(statistics.stdev(values[cell]))
        losses = [r["valid_loss"] for r in finals]
        assert float(row["loss_mean"]) == pytest.approx(statistics.fmean(losses))
        for s in (0, 1):  # the parameter count is the trained module's
            model, _, cfg = load_trained(out / "runs" / f"{cell}-s{s}" / "checkpoint")
            assert int(row["params"]) == sum(p.numel() for p in model.parameters())
            assert int(row["hidden_size"]) == cfg.hidden_size == model.hidden_size
            assert cfg.cell == cell and cfg.seed == s
        assert f"| {cell} | {row['hidden_size']} | {row['params']} |" in markdown
    for cell in ("gru", "rnn"):
        t, df, p = welch_t_test(values[cell], values["lstm"])
        if math.isnan(df):
            assert float(rows[cell]["p"]) == p
        else:
            assert float(rows[cell]["p"]) == pytest.approx(p)
    assert rows["lstm"]["p"] == "nan"


def test_the_command_line_uses_the_tasks_defaults_unless_a_flag_is_given():
    """``lstmlab study --task recall`` trains as ``lstmlab train --task recall`` does (chrono);
    ``--init`` given wins."""
    import argparse

    parser = argparse.ArgumentParser()
    study_cli.add_arguments(parser)
    assert study_cli.base_config(parser.parse_args(CLI_TINY)).init == "chrono"
    given = study_cli.base_config(parser.parse_args([*CLI_TINY, "--init", "default"]))
    assert given.init == "default"
    adding = study_cli.base_config(parser.parse_args(["--task", "adding"]))
    assert adding.init == TrainConfig.init


def test_a_run_killed_after_a_checkpoint_resumes_to_the_uninterrupted_result(tmp_path):
    """train_run continues from the checkpoint, dropping what was logged after it."""
    whole = TrainConfig(**{**TINY, "cell": "peephole"}, out=str(tmp_path / "whole"))
    train(whole, progress=False)
    part = TrainConfig(**{**TINY, "cell": "peephole", "steps": 3}, out=str(tmp_path / "part"))
    train(part, progress=False)
    log = tmp_path / "part" / "metrics.jsonl"
    log.write_text(log.read_text() + json.dumps({"step": 4, "loss": 9.0}) + "\n")  # lost step
    result = train_run(
        TrainConfig(**{**TINY, "cell": "peephole"}, out=str(tmp_path / "part")), {"name": "part"}
    )
    assert result["resumed"] and result["steps"] == 6
    a, b = (
        safetensors.torch.load_file(tmp_path / k / "checkpoint" / "model.safetensors")
        for k in ("whole", "part")
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def logged(path):  # the throughput differs from run to run
        return [{k: v for k, v in r.items() if k != "items_per_s"} for r in read_metrics(path)]

    assert logged(log) == logged(tmp_path / "whole" / "metrics.jsonl")
    assert json.loads((tmp_path / "part" / "result.json").read_text())["valid"] == result["valid"]


def test_lr_search_picks_the_lowest_validation_loss_and_trains_the_other_seeds_with_it(tmp_path):
    out = tmp_path / "search"
    rows = run_study(
        Study(
            TrainConfig(**TINY),
            cells=["coupled"],
            seeds=2,
            lr_search=2,
            lr_range=(1e-3, 1e-1),
            out=str(out),
        )
    )
    trials = {
        json.loads(p.read_text())["lr"]: json.loads(p.read_text())["valid"]["loss"]
        for p in (out / "runs").glob("coupled-s0-lr*/result.json")
    }
    assert len(trials) == 2 and all(1e-3 <= lr <= 1e-1 for lr in trials)
    best = min(trials, key=trials.get)
    assert rows[0]["lr"] == best
    seed1 = sorted(p.name for p in (out / "runs").glob("coupled-s1-*"))
    assert seed1 == [f"coupled-s1-lr{best:.3g}"]
    assert json.loads((out / "study.json").read_text())["learning_rates"] == sorted(trials)


def test_a_different_study_in_the_same_folder_is_refused(tmp_path):
    base = TrainConfig(**{**TINY, "steps": 3})
    run_study(Study(base, cells=["rnn"], seeds=1, out=str(tmp_path)))
    with pytest.raises(ValueError, match="different study.*seeds"):
        run_study(Study(base, cells=["rnn"], seeds=2, out=str(tmp_path)))


def test_bad_settings_are_named():
    base = TrainConfig(**TINY)
    with pytest.raises(ValueError, match="cells must be names"):
        Study(base, cells=["lstm", "lstn"])
    with pytest.raises(ValueError, match="must not repeat"):
        Study(base, cells=["lstm", "lstm"])
    with pytest.raises(ValueError, match="seeds must be a positive integer"):
        Study(base, seeds=0)
    with pytest.raises(ValueError, match="lr_range"):
        Study(base, lr_search=3, lr_range=(0.1, 0.01))
    with pytest.raises(ValueError, match="tie_weights"):
        Study(TrainConfig(task="text", tie_weights=True))
    with pytest.raises(ValueError, match="duration like 90s, 10m or 1.5h"):
        parse_budget("ten minutes")
    assert [parse_budget(s) for s in ("90s", "10m", "1.5h", "4")] == [1.5, 10, 90, 4]


def test_the_budget_is_split_evenly_and_stops_runs_early(tmp_path):
    """--budget B over N runs and W workers gives each run B * W / N minutes; a run stopped by
    its time reports the metrics of the model it stopped with."""
    out = tmp_path / "timed"
    rows = run_study(
        Study(
            TrainConfig(**{**TINY, "steps": 500}),
            cells=["rnn"],
            seeds=2,
            budget_minutes=2e-6,
            out=str(out),
        )
    )
    assert json.loads((out / "study.json").read_text())["minutes_per_run"] == 1e-6
    assert rows[0]["steps"] < 500
    for s in (0, 1):
        run = out / "runs" / f"rnn-s{s}"
        result = json.loads((run / "result.json").read_text())
        assert result["steps"] < 500
        assert result["valid"] == pytest.approx(evaluate_checkpoint(run / "checkpoint"))


def test_a_diverged_run_is_finished_counted_and_never_averaged(tmp_path):
    base = TrainConfig(
        task="adding",
        length=5,
        hidden_size=4,
        batch_size=4,
        eval_batches=1,
        steps=6,
        eval_every=3,
        lr=1e30,
        clip=0,
    )  # the loss overflows at once
    rows = run_study(Study(base, cells=["rnn"], seeds=2, out=str(tmp_path)))
    assert rows[0]["diverged"] == 2 and math.isnan(rows[0]["loss_mean"])
    result = json.loads((tmp_path / "runs" / "rnn-s0" / "result.json").read_text())
    assert result["diverged"] and result["valid"]["loss"] == math.inf
    assert "| 2 (2 diverged) |" in (tmp_path / "results.md").read_text()


def test_a_study_saved_before_a_new_setting_existed_still_resumes(tmp_path):
    """TrainConfig grows settings over time; an older study.json lacks them and must still match."""
    import dataclasses as dc
    import json

    from lstmlab.study.runner import _same_plan
    from lstmlab.train import TrainConfig

    base = dc.asdict(TrainConfig(task="recall"))
    plan = {"cells": ["lstm"], "seeds": 2, "base": base, "minutes_per_run": 1.0}
    old = {**plan, "base": {k: v for k, v in base.items() if k != "zoneout"}}
    (tmp_path / "study.json").write_text(json.dumps(old))
    assert _same_plan(tmp_path / "study.json", plan)["cells"] == ["lstm"]
    changed = {**plan, "base": {**base, "zoneout": 0.5}}  # a real change is still refused
    with pytest.raises(ValueError, match="different study"):
        _same_plan(tmp_path / "study.json", changed)


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaped has stopped: it counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the worker processes")
def test_killing_a_study_stops_its_workers(tmp_path):
    """SIGKILL leaves the process pool no chance to stop its workers: each watches its parent
    and exits when it is gone, rather than train on (and race a restarted study)."""
    out = tmp_path / "study"
    args = [
        "--cells",
        "lstm,gru",
        "--seeds",
        "1",
        "--workers",
        "2",
        "--out",
        str(out),
        *CLI_TINY[:-6],
        "--steps",
        "1000000",
        "--eval-every",
        "1000000",
        "--checkpoint-every",
        "10",
    ]
    study = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from lstmlab.study.cli import main; sys.exit(main(sys.argv[1:]))",
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    logs = [out / "runs" / f"{cell}-s0" / "metrics.jsonl" for cell in ("lstm", "gru")]
    deadline = time.monotonic() + 120
    while not all(log.exists() for log in logs):  # both workers are training
        assert study.poll() is None and time.monotonic() < deadline, "the study did not start"
        time.sleep(0.2)
    children = Path(f"/proc/{study.pid}/task/{study.pid}/children").read_text().split()
    workers = [
        int(c) for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes().decode()
    ]
    assert len(workers) == 2
    study.kill()
    study.wait()
    try:
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers), "the workers outlived the study"
        sizes = [log.stat().st_size for log in logs]
        time.sleep(1)
        assert [log.stat().st_size for log in logs] == sizes  # and nothing trains any more
    finally:
        for pid in filter(_alive, workers):  # a failed test leaves none
            os.kill(pid, signal.SIGKILL)
