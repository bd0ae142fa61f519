"""The copying memory problem (Arjovsky, Shah & Bengio 2016, sec. 4.1) and its training wiring.

The oracle is the paper's own description, re-read position by position from each batch, and
the memoryless strategy written out as probabilities, whose cross-entropy must be the paper's
baseline 10 log(8) / (T + 20).
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from lstmlab.data import TASKS, Task, make_task
from lstmlab.data.tasks import CopyTask
from lstmlab.models import LanguageModel
from lstmlab.train import TaskJob, TrainConfig, evaluate_checkpoint, load_trained, train
from lstmlab.train.checkpoint import read_config


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("T", [1, 2, 10, 100])
def test_batch_is_the_papers_sequence(T):
    task = CopyTask(delay=T)
    x, y = task.batch(16, gen(T))
    assert x.shape == y.shape == (16, T + 20) and x.dtype == y.dtype == torch.long
    for b in range(16):
        row, target = x[b].tolist(), y[b].tolist()
        symbols = row[:10]
        assert all(0 <= s <= 7 for s in symbols)  # a_0 .. a_7
        assert row[10 : 10 + T - 1] == [8] * (T - 1)  # T - 1 blanks (a_8)
        assert row[10 + T - 1] == 9  # the delimiter (a_9)
        assert row[10 + T :] == [8] * 10  # 10 blanks
        assert target == [8] * (T + 10) + symbols  # blanks, then the symbols


def test_symbols_are_uniform_and_independent():
    x, _ = CopyTask(delay=3).batch(8000, gen(1))
    counts = torch.bincount(x[:, :10].flatten(), minlength=10).double()
    assert counts[8:].sum() == 0
    assert (counts[:8] / counts.sum() - 1 / 8).abs().max() < 0.01
    # independent, with replacement: two positions agree 1/8 of the time, every pair uniform
    assert (x[:, 0] == x[:, 9]).double().mean().item() == pytest.approx(1 / 8, abs=0.015)
    pairs = torch.bincount(x[:, 3] * 8 + x[:, 4], minlength=64).double() / len(x)
    assert (pairs - 1 / 64).abs().max() < 0.008


@pytest.mark.parametrize("T", [1, 100, 500])
def test_baseline_is_the_memoryless_strategy(T):
    task = CopyTask(delay=T)
    x, y = task.batch(32, gen(2))
    probs = torch.zeros(32, T + 20, 10, dtype=torch.float64)
    probs[:, : T + 10, 8] = 1.0  # blank while nothing is asked
    probs[:, T + 10 :, :8] = 1 / 8  # then a uniform guess among the 8 symbols
    ce = task.loss(probs.log(), y).item()
    assert ce == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-12)
    assert task.baseline == pytest.approx(ce, rel=1e-12)
    metrics = task.metrics(probs.log(), y)
    assert metrics["cross_entropy"] == pytest.approx(ce) and metrics["baseline"] == task.baseline


def test_perfect_recall_scores_zero_and_full_accuracy():
    task = CopyTask(delay=7)
    _, y = task.batch(8, gen(3))
    logits = torch.nn.functional.one_hot(y, 10).double() * 100.0
    m = task.metrics(logits, y)
    assert m["accuracy"] == 1.0 and m["cross_entropy"] < 1e-30
    wrong = logits.clone()
    wrong[:, -1] = wrong[:, -1].roll(1, dims=-1)  # the last recalled symbol wrong everywhere
    assert task.metrics(wrong, y)["accuracy"] == pytest.approx(0.9)


def test_protocol_registry_and_errors():
    task = make_task("copy", delay=12)
    assert isinstance(task, Task) and "copy" in TASKS and task.every_step
    assert (task.vocab_size, task.input_size, task.output_size, task.length) == (10, 10, 10, 32)
    assert repr(task) == "CopyTask(delay=12)"
    assert torch.equal(task.batch(4, gen(5))[0], task.batch(4, gen(5))[0])
    with pytest.raises(ValueError, match="delay"):
        CopyTask(delay=0)
    _, y = task.batch(4, gen())
    with pytest.raises(ValueError, match=r"one vector per step"):
        task.loss(torch.zeros(4, 10), y)  # a last-step prediction is the wrong shape


def test_training_uses_a_per_step_model_and_reloads(tmp_path):
    cfg = TrainConfig(
        task="copy",
        delay=4,
        hidden_size=12,
        embed_size=6,
        batch_size=8,
        steps=3,
        eval_every=3,
        eval_batches=2,
        out=str(tmp_path / "run"),
    )
    job = TaskJob(cfg, 0, 1)
    assert isinstance(job.model, LanguageModel)
    x, y = job.batch(0)
    assert job.predict(job.model, x).shape == (8, 24, 10)
    metrics = train(cfg, progress=False)
    assert set(metrics) == {"loss", "cross_entropy", "baseline", "accuracy"}
    assert metrics["baseline"] == pytest.approx(10 * math.log(8) / 24)
    # the checkpoint's model, rebuilt, scores the fixed test batches exactly as done by hand
    model, _, _ = load_trained(tmp_path / "run" / "checkpoint")
    task = CopyTask(delay=4)
    batches = [task.batch(8, gen(2 * 10**9 + k)) for k in range(2)]
    with torch.no_grad():
        by_hand = sum(task.loss(model(x)[0], y).item() for x, y in batches) / 2
    assert evaluate_checkpoint(tmp_path / "run" / "checkpoint", "test")["loss"] == pytest.approx(
        by_hand, rel=1e-6
    )
    # resumed, the run takes the caller's step and time budgets (the rest from the checkpoint)
    train(replace(cfg, steps=4, minutes=7.5, hidden_size=99), resume=True, progress=False)
    saved = read_config(tmp_path / "run" / "checkpoint")["train"]
    assert (saved["steps"], saved["minutes"], saved["hidden_size"]) == (4, 7.5, 12)
