"""A run folder's life: one run at a time, stops by signal with a checkpoint, saves that fail in
one line, resumes that keep the run's settings and log each step once, and best/ up to date.

Concurrent runs and signals use real processes (``python -m lstmlab.cli train``), stopped at a
moment the test picks: once ``metrics.jsonl`` shows a given step."""

from __future__ import annotations

import errno
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
from lstmlab.train import TaskJob, TrainConfig, evaluate_checkpoint, train
from lstmlab.train.checkpoint import _files as ckpt_files
from lstmlab.train.checkpoint import load_checkpoint

# A recall run of a few milliseconds a step; no checkpoint but the ones a test asks for.
TINY = ["--task", "recall", "--gap", "3", "--hidden-size", "8", "--batch-size", "4"]
TINY += ["--eval-every", "5", "--checkpoint-every", "1000"]


def logged(out: Path) -> list[dict]:
    text = (out / "metrics.jsonl").read_text() if (out / "metrics.jsonl").exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


def steps(out: Path) -> list[int]:
    """The training steps the log records, in order (not the evaluations)."""
    return [r["step"] for r in logged(out) if "loss" in r]


def weights(out: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(out / "checkpoint" / "model.safetensors")


def start(out: Path, log: Path) -> subprocess.Popen:
    """``lstmlab train`` on ``out`` in a process of its own, for as long as it is let run; SIGINT
    as in a terminal even where the test runner was started to ignore it."""
    return subprocess.Popen(
        [sys.executable, "-m", "lstmlab.cli", "train", *TINY, "--steps", "100000"]
        + ["--out", str(out)],
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),  # a file, not a pipe: the progress bar never fills it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_step(out: Path, step: int, process: subprocess.Popen) -> None:
    deadline = time.time() + 90
    while not (steps(out) and steps(out)[-1] >= step):
        assert process.poll() is None, f"the run ended early (exit {process.returncode})"
        assert time.time() < deadline, "the run did not get going"
        time.sleep(0.05)


def test_a_second_run_on_the_same_folder_is_refused_while_one_runs(tmp_path, capsys):
    out, log = tmp_path / "run", tmp_path / "stderr.txt"
    first = start(out, log)
    try:
        wait_for_step(out, 3, first)
        for extra in ([], ["--resume"], ["--overwrite"]):
            assert cli(["train", *TINY, "--steps", "20", "--out", str(out), *extra]) == 2
            err = capsys.readouterr().err
            assert len(err.splitlines()) == 1, err
            assert str(out) in err and "another run holds it" in err, err
        assert first.poll() is None  # the first run goes on, untouched
        wait_for_step(out, steps(out)[-1] + 3, first)
        first.terminate()
        assert first.wait(60) == 143
    finally:
        first.kill()
    logged_steps = steps(out)
    assert logged_steps == list(range(1, len(logged_steps) + 1))  # one run's log
    assert not list(out.glob("*.tmp-*"))
    # the lock went with the process: the folder is free again
    assert cli(["train", *TINY, "--steps", "3", "--out", str(out), "--overwrite"]) == 0


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_a_checkpoint_that_resumes_exactly(tmp_path, capsys, signum, code):
    out, log = tmp_path / "run", tmp_path / "stderr.txt"
    victim = start(out, log)
    try:
        wait_for_step(out, 7, victim)
        victim.send_signal(signum)
        assert victim.wait(60) == code
    finally:
        victim.kill()
    said = [line for line in log.read_text().splitlines() if "lstmlab train:" in line]
    assert len(said) == 1 and f"lstmlab train --resume --out {out}" in said[0], said
    step = load_checkpoint(out / "checkpoint", restore_rng=False).step
    assert step >= 7 and steps(out)[-1] == step  # saved where it stopped, between two steps
    assert f"step {step}" in said[0]
    assert not list(out.glob("*.tmp-*")) and not (out / "checkpoint.old").exists()
    target = str(step + 6)
    assert cli(["train", "--resume", "--out", str(out), "--steps", target]) == 0
    assert cli(["train", *TINY, "--steps", target, "--out", str(tmp_path / "whole")]) == 0
    resumed, whole = weights(out), weights(tmp_path / "whole")
    assert resumed.keys() == whole.keys()
    assert all(torch.equal(resumed[k], whole[k]) for k in whole)
    assert steps(out) == list(range(1, step + 7))


def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_last_checkpoint(
    tmp_path, capsys, monkeypatch
):
    out = tmp_path / "run"
    args = ["train", *TINY, "--steps", "10", "--checkpoint-every", "5", "--out", str(out)]
    honest, saves = ckpt_files._write, set()

    def full_disk(file: Path, data: bytes) -> None:
        if file.parent.name.startswith("checkpoint.tmp-"):
            saves.add(file.parent.name)
        if len(saves) > 1:  # the second checkpoint: the disk is full half-way through
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        honest(file, data)

    monkeypatch.setattr(ckpt_files, "_write", full_disk)
    assert cli(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "lstmlab train" in line]
    assert len(err) == 1 and "No space left on device" in err[0], err
    assert str(out / "checkpoint") in err[0]
    assert load_checkpoint(out / "checkpoint", restore_rng=False).step == 5
    assert not list(out.glob("checkpoint.tmp-*"))
    monkeypatch.undo()
    assert cli(["train", "--resume", "--out", str(out)]) == 0  # the lock went with the error
    assert load_checkpoint(out / "checkpoint", restore_rng=False).step == 10


@pytest.fixture
def broken_run(tmp_path, monkeypatch) -> Path:
    """A CLI run of 12 steps, checkpointed at step 6, that stopped at step 9 (a NaN loss) after
    logging steps 7 and 8; the log ends on a line torn by a kill."""
    honest, calls = TaskJob.loss, {"n": 0}

    def poisoned(self, model, batch):
        loss, count = honest(self, model, batch)
        calls["n"] += 1
        return (loss * float("nan"), count) if calls["n"] == 9 else (loss, count)

    out = tmp_path / "run"
    monkeypatch.setattr(TaskJob, "loss", poisoned)
    args = ["train", *TINY, "--steps", "12", "--checkpoint-every", "6", "--out", str(out)]
    assert cli(args) == 2
    monkeypatch.undo()
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"step": 9, "lo')
    assert steps(out) == list(range(1, 9))
    return out


def test_resume_keeps_the_runs_own_settings(broken_run, capsys):
    capsys.readouterr()
    assert cli(["train", "--resume", "--out", str(broken_run), "--hidden-size", "9"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--hidden-size (the run has 8)" in err, err
    assert load_checkpoint(broken_run / "checkpoint", restore_rng=False).step == 6
    # no --steps: the run's own 12 steps, not the flag's default; a flag equal to the run's is fine
    assert cli(["train", "--resume", "--out", str(broken_run), "--hidden-size", "8"]) == 0
    saved = load_checkpoint(broken_run / "checkpoint", restore_rng=False)
    assert saved.step == 12 and saved.config["train"]["steps"] == 12


def test_a_resumed_runs_log_holds_each_step_once(broken_run):
    assert cli(["train", "--resume", "--out", str(broken_run)]) == 0
    assert steps(broken_run) == list(range(1, 13))
    lines = (broken_run / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # the torn line is gone
    evaluations = [r["step"] for r in logged(broken_run) if "valid_loss" in r]
    assert evaluations == [5, 10, 12]


def test_the_last_evaluation_of_a_run_out_of_time_reaches_best(tmp_path):
    """A run stopped by its time budget evaluates once more; those weights, when the best so
    far, are best/ -- what ``lstmlab eval OUT/best`` scores."""
    out = tmp_path / "run"
    cfg = TrainConfig(
        task="recall", gap=3, hidden_size=8, batch_size=4, steps=1000, eval_every=500,
        minutes=1e-9, out=str(out),
    )  # fmt: skip
    metrics = train(cfg, progress=False)
    assert steps(out) == [1]
    best = load_checkpoint(out / "best", restore_rng=False)
    assert best.step == 1 and best.extra["valid_loss"] == metrics["loss"]
    assert evaluate_checkpoint(out / "best")["loss"] == pytest.approx(metrics["loss"], rel=1e-6)
