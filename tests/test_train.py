"""The training loop: learning, exact resume (also after SIGKILL), NaN stops, DDP, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import safetensors.torch
import torch

from lstmlab.cli.main import main as cli
from lstmlab.train import TaskJob, TrainConfig, TrainingError, evaluate_checkpoint, train
from lstmlab.train.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(run / "checkpoint" / "model.safetensors")


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A small folder of 'documents' for language-model runs."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for k in range(12):
        lines = [f"def function_{k}_{j}(x):\n    return x * {j} + {k}\n" for j in range(25)]
        (folder / f"doc{k:02d}.py").write_text("".join(lines))
    return folder


def test_lstm_learns_adding_to_a_tenth_of_the_baseline(tmp_path):
    """Hochreiter & Schmidhuber's adding problem at T=50: 1500 steps (about 30 s on a quiet CPU;
    steps, not a time budget, so a busy machine gets slower, not wrong)."""
    cfg = TrainConfig(
        task="adding",
        length=50,
        cell="lstm",
        hidden_size=64,
        batch_size=64,
        lr=5e-3,
        steps=1500,
        eval_every=250,
        patience=0,
        checkpoint_every=1500,
        out=str(tmp_path / "adding"),
    )
    metrics = train(cfg, progress=False)
    assert metrics["mse"] < 0.1 * (1 / 6), metrics


@pytest.mark.parametrize("task", ["adding", "text"])
def test_resume_continues_exactly(tmp_path, corpus, task):
    """Stopping after a checkpoint and resuming gives the uninterrupted run's parameters."""
    common = dict(
        task=task,
        text=str(corpus),
        cell="peephole",
        hidden_size=16,
        embed_size=8,
        batch_size=4,
        bptt=12,
        dropout=0.2 if task == "text" else 0.0,
        num_layers=2,
        eval_every=5,
        checkpoint_every=6,
        length=10,
    )
    train(TrainConfig(**common, steps=18, out=str(tmp_path / "whole")), progress=False)
    train(TrainConfig(**common, steps=12, out=str(tmp_path / "parts")), progress=False)
    train(TrainConfig(**common, steps=18, out=str(tmp_path / "parts")), resume=True, progress=False)
    assert_same_weights(tmp_path / "whole", tmp_path / "parts")


@pytest.mark.parametrize("task", ["recall", "text"])
def test_init_from_starts_from_the_saved_weights(tmp_path, corpus, task):
    """A run with ``init_from`` begins at the saved weights (here a later stage of a recall
    curriculum at another gap, or a text model that must keep its vocabulary), trains from there
    with a fresh optimiser, and resumes like any run."""
    common = dict(
        task=task,
        text=str(corpus),
        cell="lstm",
        hidden_size=16,
        embed_size=8,
        batch_size=4,
        bptt=12,
        eval_every=5,
        checkpoint_every=5,
    )
    train(TrainConfig(**common, gap=5, steps=5, out=str(tmp_path / "a")), progress=False)
    # SGD with a vanishing step: after one update the weights are still A's
    later = dict(common, gap=9, optimizer="sgd", lr=1e-12, init_from=str(tmp_path / "a/checkpoint"))
    train(TrainConfig(**later, steps=1, out=str(tmp_path / "b")), progress=False)
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=0, atol=1e-9, msg=k)
    fresh = dict(later, init_from=None)
    train(TrainConfig(**fresh, steps=1, out=str(tmp_path / "c")), progress=False)
    assert any(not torch.allclose(weights(tmp_path / "c")[k], wa[k]) for k in wa)
    # resuming B does not reload A over B's own progress
    train(TrainConfig(**dict(later, lr=0.5), steps=3, out=str(tmp_path / "d")), progress=False)
    train(TrainConfig(**dict(later, lr=0.5), steps=2, out=str(tmp_path / "e")), progress=False)
    train(
        TrainConfig(**dict(later, lr=0.5), steps=3, out=str(tmp_path / "e")),
        resume=True,
        progress=False,
    )
    assert_same_weights(tmp_path / "d", tmp_path / "e")


def test_init_from_a_wrong_or_missing_checkpoint_is_a_clear_error(tmp_path):
    common = dict(task="adding", length=10, cell="lstm", batch_size=4, steps=1, eval_every=1)
    train(TrainConfig(**common, hidden_size=8, out=str(tmp_path / "a")), progress=False)
    with pytest.raises(ValueError, match="model.safetensors"):
        train(
            TrainConfig(
                **common,
                hidden_size=12,
                init_from=str(tmp_path / "a/checkpoint"),
                out=str(tmp_path / "b"),
            ),
            progress=False,
        )
    with pytest.raises(FileNotFoundError, match="nowhere"):
        train(
            TrainConfig(
                **common,
                hidden_size=8,
                init_from=str(tmp_path / "nowhere"),
                out=str(tmp_path / "c"),
            ),
            progress=False,
        )


def test_sigkill_loses_at_most_the_steps_since_the_last_checkpoint(tmp_path):
    """A real process killed with SIGKILL after a checkpoint resumes to the uninterrupted result."""
    args = [
        "--task",
        "adding",
        "--length",
        "20",
        "--hidden-size",
        "16",
        "--batch-size",
        "8",
        "--checkpoint-every",
        "10",
        "--eval-every",
        "10",
        "--cell",
        "coupled",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = [sys.executable, "-m", "lstmlab.cli", "train", *args]
    victim = subprocess.Popen(
        [*run, "--steps", "100000", "--out", str(tmp_path / "killed")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    meta = tmp_path / "killed" / "checkpoint" / "checkpoint.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if meta.exists() and json.loads(meta.read_text() or "{}").get("step", 0) >= 30:
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    step = load_checkpoint(tmp_path / "killed" / "checkpoint", restore_rng=False).step
    assert step >= 30 and step % 10 == 0
    target = str(step + 20)
    subprocess.run(
        [*run, "--steps", target, "--out", str(tmp_path / "killed"), "--resume"],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*run, "--steps", target, "--out", str(tmp_path / "whole")],
        env=env,
        check=True,
        capture_output=True,
    )
    assert_same_weights(tmp_path / "whole", tmp_path / "killed")


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    honest = TaskJob.loss
    calls = {"n": 0}

    def poisoned(self, model, batch):
        loss, count = honest(self, model, batch)
        calls["n"] += 1
        return (loss * float("nan"), count) if calls["n"] == 8 else (loss, count)

    monkeypatch.setattr(TaskJob, "loss", poisoned)
    cfg = TrainConfig(
        task="adding",
        length=10,
        hidden_size=8,
        batch_size=4,
        steps=20,
        checkpoint_every=5,
        eval_every=5,
        out=str(tmp_path / "nan"),
    )
    with pytest.raises(TrainingError, match=r"loss became nan at step 8.*checkpoint"):
        train(cfg, progress=False)
    saved = load_checkpoint(tmp_path / "nan" / "checkpoint", restore_rng=False)
    assert saved.step == 5
    assert all(torch.isfinite(w).all() for w in saved.weights.values())


def test_two_processes_under_torchrun_equal_one_on_the_global_batch(tmp_path):
    args = [
        "train",
        "--task",
        "adding",
        "--length",
        "12",
        "--hidden-size",
        "8",
        "--batch-size",
        "8",
        "--steps",
        "6",
        "--checkpoint-every",
        "6",
        "--eval-every",
        "6",
        "--cell",
        "gru",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "lstmlab.cli",
            *args,
            "--out",
            str(tmp_path / "ddp"),
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=240,
    )
    assert cli([*args, "--out", str(tmp_path / "single")]) == 0
    wa, wb = weights(tmp_path / "ddp"), weights(tmp_path / "single")
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-6, rtol=1e-5)
    assert not torch.equal(wa["rnn.weight_hh_l0"], torch.zeros_like(wa["rnn.weight_hh_l0"]))


def test_cli_train_from_toml_then_sample_and_eval(tmp_path, corpus, capsys):
    settings = tmp_path / "run.toml"
    settings.write_text(
        f'task = "text"\ntext = "{corpus}"\ncell = "gru"\nhidden_size = 24\n'
        f"steps = 30\nbatch_size = 4\nbptt = 16\neval_every = 15\n"
    )
    out = tmp_path / "lm"
    assert cli(["train", "--config", str(settings), "--out", str(out), "--lr", "0.01"]) == 0
    config = json.loads((out / "checkpoint" / "checkpoint.json").read_text())["config"]
    assert config["train"]["cell"] == "gru" and config["train"]["lr"] == 0.01  # flag beats file
    capsys.readouterr()
    assert (
        cli(
            ["sample", str(out / "checkpoint"), "--prompt", "def ", "--length", "40", "--seed", "3"]
        )
        == 0
    )
    first = capsys.readouterr().out
    assert (
        cli(
            ["sample", str(out / "checkpoint"), "--prompt", "def ", "--length", "40", "--seed", "3"]
        )
        == 0
    )
    assert capsys.readouterr().out == first and len(first) == 41  # 40 chars + newline
    metrics = evaluate_checkpoint(out / "checkpoint")
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics["loss"] == pytest.approx(logged[-1]["valid_loss"], rel=1e-6)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli(["sample", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("hiden_size = 3\n")
    assert cli(["train", "--config", str(bad)]) == 2
    assert "unknown settings hiden_size" in capsys.readouterr().err
    assert cli(["train", "--cell", "lstn", "--task", "adding", "--out", str(tmp_path / "x")]) == 2
    assert "unknown cell 'lstn'" in capsys.readouterr().err


def test_a_fresh_run_never_replaces_another_runs_checkpoint(tmp_path, capsys):
    """Progress is never lost by accident: training afresh into a folder that holds a run is a
    one-line error that leaves the run untouched; ``--overwrite`` starts afresh with a new log."""
    out = tmp_path / "run"
    args = [
        "train",
        "--task",
        "adding",
        "--length",
        "8",
        "--hidden-size",
        "8",
        "--batch-size",
        "4",
        "--steps",
        "6",
        "--eval-every",
        "3",
        "--out",
        str(out),
    ]
    assert cli(args) == 0
    before = weights(out)
    log_before = (out / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert cli(args + ["--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert (out / "metrics.jsonl").read_text() == log_before
    for k, v in weights(out).items():
        assert torch.equal(v, before[k]), k
    assert cli(args + ["--seed", "1", "--overwrite"]) == 0
    steps = [
        r["step"]
        for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
        if "loss" in r
    ]
    assert steps == list(range(1, 7))  # one run's log, not two
    valid = [
        r["valid_loss"]
        for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
        if "valid_loss" in r
    ]
    assert load_checkpoint(out / "best", restore_rng=False).extra["valid_loss"] == min(valid)
    assert any(not torch.equal(v, before[k]) for k, v in weights(out).items())


def test_starting_afresh_removes_the_old_best_weights_only(tmp_path):
    """A fresh --overwrite run interrupted before its first evaluation must not leave the old
    run's best/ behind as if it were its own; a ``best`` folder that is not a checkpoint (the
    user's) is left alone."""
    from lstmlab.train.loop import _start_afresh

    out = tmp_path / "run"
    cfg = TrainConfig(
        task="adding", length=8, hidden_size=8, batch_size=4, steps=3, eval_every=3, out=str(out)
    )
    train(cfg, progress=False)
    assert (out / "best" / "checkpoint.json").is_file()
    _start_afresh(out, overwrite=True, rank=0)
    assert not (out / "best").exists() and not (out / "metrics.jsonl").exists()
    (out / "best").mkdir()
    (out / "best" / "notes.txt").write_text("mine")
    _start_afresh(out, overwrite=True, rank=0)
    assert (out / "best" / "notes.txt").read_text() == "mine"


def test_best_holds_the_weights_of_the_lowest_validation_loss(tmp_path):
    """``out/best`` is what early stopping reports: the evaluation with the lowest validation
    loss, whose weights score exactly that loss again -- not the last step's weights."""
    out = tmp_path / "run"
    cfg = TrainConfig(
        task="adding",
        length=8,
        hidden_size=8,
        batch_size=16,
        lr=0.3,
        steps=60,
        eval_every=5,
        checkpoint_every=60,
        seed=3,
        out=str(out),
    )
    train(cfg, progress=False)
    evals = [
        r
        for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
        if "valid_loss" in r
    ]
    lowest = min(evals, key=lambda r: r["valid_loss"])
    assert lowest is not evals[-1], "the test needs a run whose last evaluation is not its best"
    best = load_checkpoint(out / "best", restore_rng=False)
    assert best.step == lowest["step"] and best.extra["valid_loss"] == lowest["valid_loss"]
    again = evaluate_checkpoint(out / "best")
    assert again["loss"] == pytest.approx(lowest["valid_loss"], rel=1e-6)
    assert evaluate_checkpoint(out / "checkpoint")["loss"] != pytest.approx(again["loss"])


@pytest.mark.parametrize("decay_start", [10, 0])  # LambdaLR (StepDecay) and StepLR runs
def test_a_rescheduled_run_equals_one_that_had_the_schedule_from_the_start(tmp_path, decay_start):
    """Resuming with ``reschedule`` moves the decay of a run that has not reached it yet: the
    result is bit for bit the run configured so from the start, and a later plain resume keeps
    the new schedule."""
    common = dict(
        task="adding",
        length=8,
        hidden_size=8,
        batch_size=4,
        lr=1e-2,
        lr_decay=0.5,
        eval_every=7,
        checkpoint_every=4,
        seed=2,
    )
    planned = TrainConfig(
        **common, decay_every=10, decay_start=decay_start, steps=20, out=str(tmp_path / "planned")
    )
    train(planned, progress=False)
    late = TrainConfig(
        **common,
        decay_every=100,
        decay_start=decay_start and 100,
        steps=8,
        out=str(tmp_path / "late"),
    )
    train(late, progress=False)  # 8 steps: no decay yet in either schedule
    moved = TrainConfig(
        **{**common, "decay_every": 10, "decay_start": decay_start}, steps=14, out=late.out
    )
    train(moved, resume=True, reschedule=True, progress=False)
    train(TrainConfig(**common, steps=20, out=late.out), resume=True, progress=False)
    assert_same_weights(tmp_path / "planned", tmp_path / "late")
    lrs = [
        {
            r["step"]: r["lr"]
            for r in map(json.loads, (tmp_path / run / "metrics.jsonl").read_text().splitlines())
            if "loss" in r
        }
        for run in ("planned", "late")
    ]
    assert lrs[0] == lrs[1] and lrs[0][20] == pytest.approx(0.25e-2)
    log = (tmp_path / "late" / "metrics.jsonl").read_text()
    assert log.count('"rescheduled"') == 1
    train(
        TrainConfig(
            **{**common, "decay_every": 10, "decay_start": decay_start}, steps=22, out=late.out
        ),
        resume=True,
        reschedule=True,
        progress=False,
    )
    log = (tmp_path / "late" / "metrics.jsonl").read_text()
    assert log.count('"rescheduled"') == 1  # the same schedule: a plain resume
    with pytest.raises(ValueError, match="resume"):
        train(moved, reschedule=True, progress=False)


def test_cli_resume_with_a_schedule_flag_keeps_the_runs_other_settings(tmp_path):
    out = tmp_path / "run"
    base = [
        "train",
        "--task",
        "adding",
        "--length",
        "8",
        "--hidden-size",
        "8",
        "--batch-size",
        "4",
        "--lr-decay",
        "0.5",
        "--decay-every",
        "3",
        "--decay-start",
        "50",
        "--eval-every",
        "4",
        "--out",
        str(out),
    ]
    assert cli(base + ["--steps", "4"]) == 0
    assert cli(["train", "--resume", "--out", str(out), "--steps", "8", "--decay-start", "6"]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    (change,) = [r for r in records if "rescheduled" in r]
    assert change["step"] == 4
    assert change["rescheduled"] == {"lr_decay": 0.5, "decay_every": 3, "decay_start": 6}
    lr = {r["step"]: r["lr"] for r in records if "loss" in r}
    assert lr[5] == lr[1] and lr[6] == pytest.approx(lr[1] / 2)  # the rate after step s
    assert (
        load_checkpoint(out / "checkpoint", restore_rng=False).config["train"]["decay_start"] == 6
    )
