"""Damaged and hostile checkpoints: every command refuses them in one line, quickly, in bounded
memory -- never a traceback, a hang, a memory blow-up or silent garbage.

One tiny run is trained per module; each variant of ``hostile_variants.VARIANTS`` is a copy of
it damaged in one way. The real commands (``eval``, ``sample``, ``explore``, ``train --resume``)
run on every variant through :func:`lstmlab.cli.main.main`, all in one child process under a
4 GiB address-space limit, each command under an alarm (a hang is reported, not waited out).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hostile_variants import NONFINITE, RESUME_ONLY, VARIANTS, only_old
from lstmlab.data import Vocab
from lstmlab.models import LanguageModel
from lstmlab.models.generate import sample
from lstmlab.train import TrainConfig, train

COMMANDS = ("eval", "sample", "explore", "resume")
LIMIT = 4 << 30  # address space of the child, bytes
ALARM = 20  # seconds one command may take before it counts as hanging
FAST = 10.0  # seconds a refusal may take (on a busy machine; it is milliseconds on a quiet one)

# Runs each job (name, argv) through the CLI's main() and writes what happened as JSON.
DRIVER = r"""
import contextlib, io, json, resource, signal, sys, time, traceback
limit, seconds = int(sys.argv[3]), int(sys.argv[4])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from lstmlab.cli.main import main

class Hang(BaseException):
    pass

def alarm(signum, frame):
    raise Hang()

signal.signal(signal.SIGALRM, alarm)
jobs, results = json.load(open(sys.argv[1])), {}
for name, argv in jobs:
    err, out = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    signal.alarm(seconds)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(argv)
    except Hang:
        rc, err = "hang", io.StringIO("hang")
    except BaseException:
        rc = "crash"
        err.write(traceback.format_exc())
    finally:
        signal.alarm(0)
    results[name] = {"rc": rc, "stderr": err.getvalue(), "seconds": time.perf_counter() - start}
results["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
json.dump(results, open(sys.argv[2], "w"))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A real run folder (checkpoint/, best/) of a tiny character-level language model."""
    base = tmp_path_factory.mktemp("trained")
    corpus = base / "corpus"
    corpus.mkdir()
    for k in range(4):
        (corpus / f"d{k}.py").write_text(
            "".join(f"def f{k}_{j}(x): return x*{j}\n" for j in range(20))
        )
    cfg = TrainConfig(
        text=str(corpus), hidden_size=8, embed_size=4, batch_size=2, bptt=8, steps=3,
        eval_every=3, checkpoint_every=3, out=str(base / "run"),
    )  # fmt: skip
    train(cfg, progress=False)
    return base / "run"


def _argv(command: str, run: Path) -> list[str]:
    return {
        "eval": ["eval", str(run)],
        "sample": ["sample", str(run), "--length", "5", "--seed", "0"],
        "explore": ["explore", str(run), "--text", __file__, "-o", str(run / "x.html")],
        "resume": ["train", "--resume", "--out", str(run), "--steps", "5"],
    }[command]


@pytest.fixture(scope="module")
def results(trained: Path, tmp_path_factory) -> dict:
    """What each command did on each variant: {"variant/command": {rc, stderr, seconds}}."""
    base = tmp_path_factory.mktemp("variants")
    damages = {**{k: v[0] for k, v in VARIANTS.items()}, **NONFINITE}
    damages.update({"intact": lambda run: None, "only-old": only_old})
    jobs = []
    for name, damage in damages.items():
        for command in COMMANDS:  # a copy per command: a resumed run changes its folder
            run = base / name / command
            shutil.copytree(trained, run, symlinks=True)
            damage(run)
            jobs.append((f"{name}/{command}", _argv(command, run)))
    (base / "jobs.json").write_text(json.dumps(jobs))
    subprocess.run(
        [
            sys.executable,
            "-c",
            DRIVER,
            *map(str, (base / "jobs.json", base / "out.json", LIMIT, ALARM)),
        ],
        timeout=300,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return json.loads((base / "out.json").read_text())


def _refused(result: dict, words: tuple[str, ...]) -> str:
    lines = result["stderr"].strip().splitlines()
    assert result["rc"] == 2, result
    assert len(lines) == 1 and "Traceback" not in result["stderr"], result["stderr"]
    assert result["seconds"] < FAST, result
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", list(VARIANTS))
def test_refused_in_one_line(results, name, command):
    if name in RESUME_ONLY and command != "resume":
        assert results[f"{name}/{command}"]["rc"] == 0  # what only training reads is unread
    else:
        _refused(results[f"{name}/{command}"], VARIANTS[name][1])


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", list(NONFINITE))
def test_nonfinite_weights(results, name, command):
    _refused(results[f"{name}/{command}"], ("model.safetensors", "NaN or infinite"))


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", ["intact", "only-old"])
def test_intact_checkpoints_work_under_the_limits(results, name, command):
    """The limits fit a normal run, and a run folder holding only checkpoint.old (a save killed
    between its renames) works for every command, not only --resume."""
    result = results[f"{name}/{command}"]
    assert result["rc"] == 0, result
    assert result["seconds"] < 60, result


def test_memory_stays_bounded(results):
    assert results["peak_rss_bytes"] < LIMIT
    assert max(r["seconds"] for k, r in results.items() if k != "peak_rss_bytes") < 60


def test_the_cli_process_does_not_block_on_a_fifo(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "checkpoint" / "model.safetensors").unlink()
    os.mkfifo(run / "checkpoint" / "model.safetensors")
    done = subprocess.run(
        [sys.executable, "-m", "lstmlab.cli", "eval", str(run)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "FIFO" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_sampling_refuses_non_finite_logits():
    """Weights that overflow (finite, but huge) make infinite logits: an error, not a crash
    inside torch.multinomial."""
    vocab = Vocab(["<unk>", *"abc"], "char")
    model = LanguageModel(len(vocab), "lstm", embed_size=4, hidden_size=4, num_layers=1)
    with torch.no_grad():
        model.head.bias.fill_(float("inf"))
    with pytest.raises(ValueError, match="NaN or infinite"):
        list(sample(model, vocab, "ab", length=3, seed=0))
