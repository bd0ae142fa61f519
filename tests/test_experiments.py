"""The experiment scripts (experiments/): their settings build real jobs, their step counts match
the data, and recall's curriculum chains its stages. The long runs themselves are not tests."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from lstmlab.train import make_job
from lstmlab.train.checkpoint import read_config

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
sys.path.insert(0, str(EXPERIMENTS))


def script(name: str):
    return importlib.import_module(name)


def configs(tmp: Path):
    """Every run configuration of every script, by a readable id."""
    adding, copying, recall = script("adding"), script("copying"), script("recall")
    smnist, word, tied, char = (
        script("smnist"),
        script("ptb_word"),
        script("ptb_word_tied"),
        script("ptb_char"),
    )
    yield from (
        (f"adding-{c}-T{n}", adding.config(c, n, tmp)) for n in adding.LENGTHS for c in adding.CELLS
    )
    yield from ((f"copying-{c}", copying.config(c, tmp)) for c in copying.CELLS)
    yield from (
        (f"recall-{c}-gap{g}", recall.config(c, g, tmp)) for g in (5, 200) for c in recall.CELLS
    )
    yield from ((f"smnist-{m}", smnist.config(m, 1, tmp)) for m in smnist.MODES)
    yield "ptb_word", word.config(tmp)
    yield "ptb_word_tied", tied.config(tmp, 200, 0.3)
    yield "ptb_char", char.config(tmp, 12, 1000)


def test_every_script_configuration_builds_its_job(tmp_path):
    """Each configuration makes a model and a batch; the output folders are distinct."""
    outs = set()
    for name, cfg in configs(tmp_path):
        job = make_job(cfg)
        batch = job.batch(0)
        assert sum(p.numel() for p in job.model.parameters()) > 0, name
        assert isinstance(batch, tuple) and batch[0].shape[0] > 0, name
        outs.add(cfg.out)
    assert len(outs) == len(list(configs(tmp_path)))


@pytest.mark.parametrize("name", ["ptb_word", "ptb_word_tied", "ptb_char"])
def test_steps_per_epoch_are_the_training_streams_chunks(tmp_path, name):
    """A script's epoch (and so its decay schedule) is the number of bptt chunks the training
    stream really has."""
    module = script(name)
    cfg = {
        "ptb_word": lambda: module.config(tmp_path),
        "ptb_word_tied": lambda: module.config(tmp_path, 200, 0.3),
        "ptb_char": lambda: module.config(tmp_path, 12, 1000),
    }[name]()
    assert module.EPOCH == len(make_job(cfg).stream)


def test_recall_curriculum_chains_its_stages(tmp_path, monkeypatch):
    """Each stage starts from the previous stage's final weights and is tested at its own gap."""
    recall, common = script("recall"), script("common")
    monkeypatch.setattr(recall, "STAGES", (2, 4, 6))
    result = recall.curriculum("lstm", tmp_path, common.Budget(0), quick=True)
    assert sorted(result["accuracy"]) == [2, 4, 6]
    assert all(s["done"] for s in result["status"].values())
    folder = tmp_path / "curriculum"
    for before, after in ((2, 4), (4, 6)):
        train = read_config(folder / f"lstm-gap{after}" / "checkpoint")["train"]
        assert train["gap"] == after
        assert train["init_from"] == str(folder / f"lstm-gap{before}" / "checkpoint")
    assert read_config(folder / "lstm-gap2" / "checkpoint")["train"]["init_from"] is None
    # (that train() starts such a run from those weights is tested in test_train.py)
