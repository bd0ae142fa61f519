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

import base64
import errno
import glob
import hashlib
import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import Tensor, nn

FORMAT, VERSION = "lstmlab-checkpoint", 1
META, MODEL, OPTIMIZER = "checkpoint.json", "model.safetensors", "optimizer.safetensors"
TENSORS = "state.safetensors"


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


def save_checkpoint(path: str | os.PathLike, *, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any | None = None, config: dict, vocab: dict | None = None,
                    step: int = 0, epoch: int = 0, extra: dict | None = None,
                    tensors: dict[str, Tensor] | None = None) -> Path:
    """Write a checkpoint directory at ``path`` atomically, replacing an older one; return its path.

    ``tensors`` are further named tensors the run needs to continue exactly (read back as
    ``Checkpoint.tensors``).

    ``config``, ``vocab`` and ``extra`` must be JSON-serialisable with string keys. The RNG states
    of torch (CPU and CUDA), ``random`` and ``numpy.random`` are taken as they are at this call.
    """
    path = Path(path)
    if path.exists() and not (path / META).is_file():
        raise FileExistsError(f"{path} exists and is not an lstmlab checkpoint; refusing to "
                              "replace it")
    for name, value in (("config", config), ("vocab", vocab), ("extra", extra)):
        _check_json(value, name)
    blobs = {MODEL: safetensors.torch.save(_cpu_copies(model.state_dict()))}
    optim_meta = sched_meta = None
    if optimizer is not None:
        optim_tensors: dict[str, Tensor] = {}
        optim_meta = {"class": type(optimizer).__name__,
                      "state_dict": _split(optimizer.state_dict(), "", optim_tensors)}
        blobs[OPTIMIZER] = safetensors.torch.save(_cpu_copies(optim_tensors))
    if tensors:
        blobs[TENSORS] = safetensors.torch.save(_cpu_copies(tensors))
    if scheduler is not None:
        held: dict[str, Tensor] = {}
        sched_meta = {"class": type(scheduler).__name__,
                      "state_dict": _split(scheduler.state_dict(), "", held)}
        if held:  # e.g. a tensor lr in _last_lr; rare enough to keep out of the file format
            raise TypeError(f"scheduler state holds tensors ({', '.join(held)}); "
                            "only JSON values are supported")
    meta = {"format": FORMAT, "version": VERSION, "step": int(step), "epoch": int(epoch),
            "config": config, "vocab": vocab, "extra": extra or {},
            "optimizer": optim_meta, "scheduler": sched_meta, "rng": _rng_state(),
            "files": {name: {"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                      for name, b in blobs.items()}}
    blobs[META] = json.dumps(meta, indent=1).encode()

    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.with_name(path.name + ".old")
    for stray in path.parent.glob(glob.escape(path.name) + ".tmp-*"):
        shutil.rmtree(stray, ignore_errors=True)   # left by a save that was killed
    tmp = Path(tempfile.mkdtemp(prefix=path.name + ".tmp-", dir=path.parent))
    try:
        for name, data in blobs.items():
            _write(tmp / name, data)
        _fsync_dir(tmp)
        if path.exists():
            if old.exists():    # a save killed after its swap left it; ckpt is newer, complete
                shutil.rmtree(old)
            os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            if old.exists() and not path.exists():
                os.rename(old, path)                # put the previous checkpoint back
            raise
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return path


def load_checkpoint(path: str | os.PathLike, *, model: nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any | None = None,
                    restore_rng: bool = True) -> Checkpoint:
    """Read the checkpoint at ``path``, load it into whichever objects are given, return the rest.

    Build ``model``, ``optimizer`` and ``scheduler`` as for a fresh run (see :func:`read_config`);
    with ``restore_rng`` the global RNGs continue as they were at save time, so training resumes
    bit for bit. Never unpickles. Raises ``FileNotFoundError`` for a missing file and
    ``ValueError`` (one line naming the file) for a corrupt, foreign or mismatched one.
    """
    root, meta = _read_meta(path)
    weights = _read_tensors(root, meta, MODEL)
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
    if optim_state is not None:
        try:
            optimizer.load_state_dict(optim_state)
        except (ValueError, KeyError, RuntimeError, TypeError) as e:
            raise ValueError(f"{root / OPTIMIZER}: does not fit the optimizer: "
                             f"{_one_line(e)}") from None
    if model is not None:
        model.load_state_dict(weights)
    if sched_state is not None:
        scheduler.load_state_dict(sched_state)
    if restore_rng:
        try:
            _set_rng_state(meta["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"{root / META}: malformed RNG state ({_one_line(e)})") from None
    extra_tensors = _read_tensors(root, meta, TENSORS) if TENSORS in meta["files"] else {}
    return Checkpoint(meta["config"], meta["vocab"], meta["step"], meta["epoch"], meta["extra"],
                      weights, root, extra_tensors)


def read_config(path: str | os.PathLike) -> dict:
    """The run config saved in the checkpoint at ``path``, to rebuild the model before loading."""
    return _read_meta(path)[1]["config"]


def read_vocab(path: str | os.PathLike) -> dict | None:
    """The vocabulary saved in the checkpoint at ``path`` (JSON), or None."""
    return _read_meta(path)[1]["vocab"]


# --- reading, checked: every failure is one line naming the file ---

def _read_meta(path: str | os.PathLike) -> tuple[Path, dict]:
    root = Path(path)
    if root.is_dir() and not (root / META).exists() and (root / "checkpoint" / META).exists():
        root = root / "checkpoint"      # a run folder given for its checkpoint
    if not root.exists() and (old := root.with_name(root.name + ".old")).is_dir():
        root = old      # a save was killed between its two renames; this is the previous one
    if root.is_file():
        raise ValueError(f"{root}: is a file, not an lstmlab checkpoint directory"
                         f"{_sniff(root.read_bytes()[:4])}")
    file = root / META
    data = _read_bytes(file)
    try:
        meta = json.loads(data.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{file}: not valid JSON, truncated or corrupt{_sniff(data[:4])} "
                         f"({_one_line(e)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{file}: not an lstmlab checkpoint (no \"format\": \"{FORMAT}\")")
    version = meta.get("version")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"{file}: invalid format version {version!r}")
    if version > VERSION:
        raise ValueError(f"{file}: format version {version} is newer than this lstmlab reads "
                         f"({VERSION}); upgrade lstmlab")
    keys = ("step", "epoch", "config", "vocab", "extra", "optimizer", "scheduler", "rng", "files")
    if missing := [k for k in keys if k not in meta]:
        raise ValueError(f"{file}: malformed checkpoint, missing {', '.join(missing)}")
    types = {"step": int, "epoch": int, "config": dict, "vocab": (dict, type(None)),
             "extra": dict, "files": dict, "rng": dict}
    if wrong := [k for k, t in types.items() if not isinstance(meta[k], t)]:
        raise ValueError(f"{file}: malformed checkpoint, wrong type for {', '.join(wrong)}")
    return root, meta


def _read_tensors(root: Path, meta: dict, name: str) -> dict[str, Tensor]:
    file = root / name
    expected = meta["files"].get(name)
    if expected is None:
        raise ValueError(f"{root / META}: lists no {name}")
    data = _read_bytes(file)
    if len(data) != expected["bytes"]:
        raise ValueError(f"{file}: truncated or altered ({len(data)} bytes, "
                         f"checkpoint.json says {expected['bytes']})")
    if hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise ValueError(f"{file}: corrupt (sha256 differs from checkpoint.json)")
    try:
        return safetensors.torch.load(data)
    except Exception as e:   # safetensors raises its own SafetensorError, or others
        raise ValueError(f"{file}: not a valid safetensors file ({_one_line(e)})") from None


def _read_bytes(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no such file", str(file)) from None


def _check_weights(file: Path, weights: dict[str, Tensor], expected: dict[str, Tensor]) -> None:
    problems = [f"missing {k}" for k in expected if k not in weights]
    problems += [f"unexpected {k}" for k in weights if k not in expected]
    problems += [f"{k} has shape {tuple(weights[k].shape)} in the file, {tuple(e.shape)} in the "
                 "model" for k, e in expected.items()
                 if k in weights and weights[k].shape != e.shape]
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise ValueError(f"{file}: weights do not match the model: {'; '.join(problems[:3])}{more}")


def _state(file: Path, what: str, saved: dict | None, obj: object,
           tensors: dict[str, Tensor]) -> dict:
    """The saved state dict for the ``optimizer`` or ``scheduler`` ``obj``, checked."""
    if saved is None:
        raise ValueError(f"{file}: the checkpoint holds no {what} state")
    try:
        cls, state = saved["class"], _join(saved["state_dict"], tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{file}: malformed {what} state ({_one_line(e)})") from None
    if cls != type(obj).__name__:   # Adam moments loaded into SGD would run, wrongly
        raise ValueError(f"{file}: the {what} state is for {cls}, not {type(obj).__name__}")
    return state


def _sniff(head: bytes) -> str:
    return " (a zip archive: a torch.save file? lstmlab never unpickles)" if head == b"PK\x03\x04" \
        else ""


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


# --- state dicts as JSON plus named tensors: keys like "state.3.exp_avg" ---

def _split(obj: Any, key: str, tensors: dict[str, Tensor]) -> Any:
    """``obj`` as JSON, each tensor moved into ``tensors`` under its dotted key."""
    if isinstance(obj, Tensor):
        tensors[key] = obj
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _split(v, f"{key}.{k}".lstrip("."), tensors) for k, v in obj.items()}
        # optimizer state is keyed by parameter index; JSON object keys are strings only
        return {"__items__": [[k, _split(v, f"{key}.{k}".lstrip("."), tensors)]
                              for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_split(v, f"{key}.{i}".lstrip("."), tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"state value {key} of type {type(obj).__name__} cannot be saved")


def _join(obj: Any, tensors: dict[str, Tensor]) -> Any:
    """Undo :func:`_split`."""
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__tuple__" in obj:
        return tuple(_join(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {k: _join(v, tensors) for k, v in obj["__items__"]}
    return {k: _join(v, tensors) for k, v in obj.items()}


def _cpu_copies(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    # copies, because safetensors refuses tensors that share memory (tied weights)
    return {k: t.detach().to("cpu", copy=True).contiguous() for k, t in tensors.items()}


def _check_json(value: Any, name: str) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} is not JSON-serialisable: {e}") from None
    # json.dumps turns int keys into strings silently: an id -> token vocab would come back changed
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if bad := [k for k in v if not isinstance(k, str)]:
                raise TypeError(f"{name} has a non-string key {bad[0]!r}; JSON keys are strings")
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)


# --- RNG states ---

def _rng_state() -> dict:
    b64 = lambda t: base64.b64encode(t.numpy().tobytes()).decode()   # noqa: E731
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": b64(torch.get_rng_state()),
            "cuda": [b64(s) for s in torch.cuda.get_rng_state_all()]
            if torch.cuda.is_available() else [],
            "python": [version, list(mt), gauss],
            "numpy": [name, keys.tolist(), pos, has_gauss, cached]}


def _set_rng_state(rng: dict) -> None:
    def tensor(s: str) -> Tensor:
        return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)
    torch.set_rng_state(tensor(rng["torch"]))
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensor(s) for s in rng["cuda"]])
    version, mt, gauss = rng["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


# --- files ---

def _write(file: Path, data: bytes) -> None:
    with open(file, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(directory: Path) -> None:
    # makes the new names durable; directories cannot be opened for fsync on Windows
    if os.name == "posix":
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
