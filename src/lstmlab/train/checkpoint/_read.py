"""Reading a checkpoint back, checked: every failure is one line naming the file.

The layout is described in :mod:`lstmlab.checkpoint`; ``checkpoint.json`` lists each tensor
file's size and sha256, and :func:`_read_tensors` checks both before parsing it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import safetensors.torch
from torch import Tensor

from lstmlab.train.checkpoint._tree import _join

# The format marker and the files of a checkpoint directory (saving writes them too).
FORMAT, VERSION = "lstmlab-checkpoint", 1
META, MODEL, OPTIMIZER = "checkpoint.json", "model.safetensors", "optimizer.safetensors"
TENSORS = "state.safetensors"


def _read_meta(path: str | os.PathLike) -> tuple[Path, dict]:
    root = Path(path)
    if root.is_dir() and not (root / META).exists() and (root / "checkpoint" / META).exists():
        root = root / "checkpoint"  # a run folder given for its checkpoint
    if not root.exists() and (old := root.with_name(root.name + ".old")).is_dir():
        root = old  # a save was killed between its two renames; this is the previous one
    if root.is_file():
        raise ValueError(
            f"{root}: is a file, not an lstmlab checkpoint directory{_sniff(root.read_bytes()[:4])}"
        )
    file = root / META
    data = _read_bytes(file)
    try:
        meta = json.loads(data.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(
            f"{file}: not valid JSON, truncated or corrupt{_sniff(data[:4])} ({_one_line(e)})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f'{file}: not an lstmlab checkpoint (no "format": "{FORMAT}")')
    version = meta.get("version")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"{file}: invalid format version {version!r}")
    if version > VERSION:
        raise ValueError(
            f"{file}: format version {version} is newer than this lstmlab reads "
            f"({VERSION}); upgrade lstmlab"
        )
    keys = ("step", "epoch", "config", "vocab", "extra", "optimizer", "scheduler", "rng", "files")
    if missing := [k for k in keys if k not in meta]:
        raise ValueError(f"{file}: malformed checkpoint, missing {', '.join(missing)}")
    types = {
        "step": int,
        "epoch": int,
        "config": dict,
        "vocab": (dict, type(None)),
        "extra": dict,
        "files": dict,
        "rng": dict,
    }
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
        raise ValueError(
            f"{file}: truncated or altered ({len(data)} bytes, "
            f"checkpoint.json says {expected['bytes']})"
        )
    if hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise ValueError(f"{file}: corrupt (sha256 differs from checkpoint.json)")
    try:
        return safetensors.torch.load(data)
    except Exception as e:  # safetensors raises its own SafetensorError, or others
        raise ValueError(f"{file}: not a valid safetensors file ({_one_line(e)})") from None


def _read_bytes(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no such file", str(file)) from None


def _check_weights(file: Path, weights: dict[str, Tensor], expected: dict[str, Tensor]) -> None:
    problems = [f"missing {k}" for k in expected if k not in weights]
    problems += [f"unexpected {k}" for k in weights if k not in expected]
    problems += [
        f"{k} has shape {tuple(weights[k].shape)} in the file, {tuple(e.shape)} in the model"
        for k, e in expected.items()
        if k in weights and weights[k].shape != e.shape
    ]
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise ValueError(f"{file}: weights do not match the model: {'; '.join(problems[:3])}{more}")


def _state(
    file: Path, what: str, saved: dict | None, obj: object, tensors: dict[str, Tensor]
) -> dict:
    """The saved state dict for the ``optimizer`` or ``scheduler`` ``obj``, checked."""
    if saved is None:
        raise ValueError(f"{file}: the checkpoint holds no {what} state")
    try:
        cls, state = saved["class"], _join(saved["state_dict"], tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{file}: malformed {what} state ({_one_line(e)})") from None
    if cls != type(obj).__name__:  # Adam moments loaded into SGD would run, wrongly
        raise ValueError(f"{file}: the {what} state is for {cls}, not {type(obj).__name__}")
    return state


def _sniff(head: bytes) -> str:
    return (
        " (a zip archive: a torch.save file? lstmlab never unpickles)"
        if head == b"PK\x03\x04"
        else ""
    )


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]
