"""Checkpoints a training run can be resumed from exactly, written atomically, read without pickle.

A checkpoint is a directory::

    ckpt/
      checkpoint.json        format marker and version, config, vocab, step, epoch, extra metrics,
                             the non-tensor parts of the optimizer and scheduler state, RNG states,
                             and the size and sha256 of each tensor file
      model.safetensors      model.state_dict()
      optimizer.safetensors  every tensor of optimizer.state_dict(), e.g. ``state.3.exp_avg``
                             (only when an optimizer was given)
      state.safetensors      any other named tensors of the run (``tensors=``), e.g. the
                             recurrent state carried between truncated-BPTT chunks

Saving never leaves ``ckpt`` half-written: everything goes into ``ckpt.tmp-XXXX`` beside it
(same filesystem), is fsynced, then ``ckpt`` is renamed to ``ckpt.old``, ``ckpt.tmp-XXXX`` to
``ckpt``, and ``ckpt.old`` is removed. A process killed at any moment leaves a complete ``ckpt``,
or (between the two renames) no ``ckpt`` but a complete ``ckpt.old``, which loading falls back
to. The next save removes stray ``ckpt.tmp-*`` and ``ckpt.old``. Two processes must not save to
the same path at once.

Example::

    save_checkpoint("runs/ckpt", model=model, optimizer=opt, scheduler=sched,
                    config=vars(args), vocab=vocab, step=step)
    # later, perhaps in a new process: build everything as for a fresh run, then load
    model = build_model(**read_config("runs/ckpt"))
    opt, sched = build_optimizer(model)
    step = load_checkpoint("runs/ckpt", model=model, optimizer=opt, scheduler=sched).step
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import Tensor, nn

from lstmlab.train.checkpoint._files import _replace_dir
from lstmlab.train.checkpoint._files_in import loads, read_regular
from lstmlab.train.checkpoint._read import (
    FORMAT,
    MAX_META,
    META,
    MODEL,
    OPTIMIZER,
    TENSORS,
    VERSION,
    _check_weights,
    _one_line,
    _read_meta,
    _read_tensors,
    _state,
)
from lstmlab.train.checkpoint._rng import _rng_state, _set_rng_state
from lstmlab.train.checkpoint._tensors import check_finite
from lstmlab.train.checkpoint._tree import _check_json, _cpu_copies, _split

__all__ = [
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "read_config",
    "read_vocab",
    "is_checkpoint",
]


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` read; ``weights`` is the model's state dict, on the CPU."""

    config: dict
    vocab: dict | None
    step: int
    epoch: int
    extra: dict
    weights: dict[str, Tensor] = field(repr=False)
    path: Path
    tensors: dict[str, Tensor] = field(default_factory=dict, repr=False)


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    config: dict,
    vocab: dict | None = None,
    step: int = 0,
    epoch: int = 0,
    extra: dict | None = None,
    tensors: dict[str, Tensor] | None = None,
) -> Path:
    """Write a checkpoint directory at ``path`` atomically, replacing an older one; return its path.

    ``tensors`` are further named tensors the run needs to continue exactly (read back as
    ``Checkpoint.tensors``).

    ``config``, ``vocab`` and ``extra`` must be JSON-serialisable with string keys. The RNG states
    of torch (CPU and CUDA), ``random`` and ``numpy.random`` are taken as they are at this call.
    """
    path = Path(path)
    if path.exists() and not (path / META).is_file():
        raise FileExistsError(
            f"{path} exists and is not an lstmlab checkpoint; refusing to replace it"
        )
    for name, value in (("config", config), ("vocab", vocab), ("extra", extra)):
        _check_json(value, name)
    blobs = {MODEL: safetensors.torch.save(_cpu_copies(model.state_dict()))}
    optim_meta = sched_meta = None
    if optimizer is not None:
        optim_tensors: dict[str, Tensor] = {}
        optim_meta = {
            "class": type(optimizer).__name__,
            "state_dict": _split(optimizer.state_dict(), "", optim_tensors),
        }
        blobs[OPTIMIZER] = safetensors.torch.save(_cpu_copies(optim_tensors))
    if tensors:
        blobs[TENSORS] = safetensors.torch.save(_cpu_copies(tensors))
    if scheduler is not None:
        held: dict[str, Tensor] = {}
        sched_meta = {
            "class": type(scheduler).__name__,
            "state_dict": _split(scheduler.state_dict(), "", held),
        }
        if held:  # e.g. a tensor lr in _last_lr; rare enough to keep out of the file format
            raise TypeError(
                f"scheduler state holds tensors ({', '.join(held)}); only JSON values are supported"
            )
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "step": int(step),
        "epoch": int(epoch),
        "config": config,
        "vocab": vocab,
        "extra": extra or {},
        "optimizer": optim_meta,
        "scheduler": sched_meta,
        "rng": _rng_state(),
        "files": {
            name: {"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()}
            for name, b in blobs.items()
        },
    }
    blobs[META] = json.dumps(meta, indent=1).encode()

    _replace_dir(path, blobs)
    return path


def load_checkpoint(
    path: str | os.PathLike,
    *,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    restore_rng: bool = True,
    finite: bool = True,
) -> Checkpoint:
    """Read the checkpoint at ``path``, load it into whichever objects are given, return the rest.

    Build ``model``, ``optimizer`` and ``scheduler`` as for a fresh run (see :func:`read_config`);
    with ``restore_rng`` the global RNGs continue as they were at save time, so training resumes
    bit for bit. Never unpickles. Raises ``FileNotFoundError`` for a missing file and
    ``ValueError`` (one line naming the file) for a corrupt, foreign or mismatched one, also
    one that is not a regular file inside the checkpoint folder, or larger than its header
    declares (see :mod:`~lstmlab.train.checkpoint.schema` for what ``checkpoint.json`` may hold).
    ``finite`` (with a ``model``): refuse weights holding NaN or infinite values, which no model
    can be used or trained with; read them without a ``model`` to inspect them.
    """
    root, meta = _read_meta(path)
    weights = _read_tensors(root, meta, MODEL)
    if finite and model is not None:
        check_finite(root / MODEL, weights)
    optim_state = sched_state = None
    if optimizer is not None:
        tensors = _read_tensors(root, meta, OPTIMIZER) if meta["optimizer"] else {}
        optim_state = _state(root / META, "optimizer", meta["optimizer"], optimizer, tensors)
    if scheduler is not None:
        sched_state = _state(root / META, "scheduler", meta["scheduler"], scheduler, {})
    if model is not None:
        _check_weights(root / MODEL, weights, model.state_dict())
    # the optimizer first: its own checks come before it changes anything, and ours for the
    # model are done, so a mismatch leaves every object as it was
    if optimizer is not None and optim_state is not None:
        try:
            optimizer.load_state_dict(optim_state)
        except (ValueError, KeyError, RuntimeError, TypeError) as e:
            raise ValueError(
                f"{root / OPTIMIZER}: does not fit the optimizer: {_one_line(e)}"
            ) from None
    if model is not None:
        model.load_state_dict(weights)
    if scheduler is not None and sched_state is not None:
        scheduler.load_state_dict(sched_state)
    if restore_rng:
        try:
            _set_rng_state(meta["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"{root / META}: malformed RNG state ({_one_line(e)})") from None
    extra_tensors = _read_tensors(root, meta, TENSORS) if TENSORS in meta["files"] else {}
    return Checkpoint(
        meta["config"],
        meta["vocab"],
        meta["step"],
        meta["epoch"],
        meta["extra"],
        weights,
        root,
        extra_tensors,
    )


def read_config(path: str | os.PathLike) -> dict:
    """The run config saved in the checkpoint at ``path``, to rebuild the model before loading.

    A key the config lacks is a ``ValueError`` naming the file (a ``dict`` otherwise), so that
    ``read_config(path)["train"]`` on a checkpoint of something else fails in one line.
    """
    root, meta = _read_meta(path)
    return _Config(root / META, meta["config"])


def read_vocab(path: str | os.PathLike) -> dict | None:
    """The vocabulary saved in the checkpoint at ``path`` (JSON), or None."""
    return _read_meta(path)[1]["vocab"]


def is_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` is itself an lstmlab checkpoint directory (its ``checkpoint.json`` carries
    the format marker), e.g. before removing it; never raises. A run folder holding one in
    ``checkpoint/`` is not itself a checkpoint: ``is_checkpoint("runs/x/checkpoint")``."""
    try:
        meta = loads(read_regular(Path(path), META, MAX_META), Path(path) / META)
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


class _Config(dict):
    """A checkpoint's config: a dict whose missing keys are one-line errors naming the file."""

    def __init__(self, file: Path, config: dict) -> None:
        super().__init__(config)
        self.file = file

    def __missing__(self, key: str):
        raise ValueError(f"{self.file}: config has no {key!r}: not a checkpoint of lstmlab train")
