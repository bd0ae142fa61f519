"""Reading a checkpoint back, checked: every failure is one line naming the file.

The layout is described in :mod:`lstmlab.train.checkpoint`; ``checkpoint.json`` lists each tensor
file's size and sha256, and :func:`_read_tensors` checks both before parsing it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from torch import Tensor

from lstmlab.models.build import model_shapes
from lstmlab.train.checkpoint._files_in import loads, read_regular
from lstmlab.train.checkpoint._tensors import read_header, read_tensors
from lstmlab.train.checkpoint._tree import _join
from lstmlab.train.checkpoint.schema import is_run, validate

# The format marker and the files of a checkpoint directory (saving writes them too).
FORMAT, VERSION = "lstmlab-checkpoint", 1
META, MODEL, OPTIMIZER = "checkpoint.json", "model.safetensors", "optimizer.safetensors"
TENSORS = "state.safetensors"


# checkpoint.json holds the config, vocabulary and RNG states: a PTB-size vocabulary is 100 kB.
MAX_META = 16 << 20


def _root(path: str | os.PathLike) -> Path:
    """The checkpoint directory ``path`` stands for: itself, a run folder's ``checkpoint/``, or
    the ``.old`` copy a save killed between its two renames leaves (the previous checkpoint)."""
    root = Path(path)
    if root.is_dir() and not os.path.lexists(root / META):
        for sub in ("checkpoint", "checkpoint.old"):
            if os.path.lexists(root / sub / META):
                return root / sub
    if not os.path.lexists(root) and (old := root.with_name(root.name + ".old")).is_dir():
        return old
    return root


def _read_meta(path: str | os.PathLike) -> tuple[Path, dict]:
    root = _root(path)
    if root.is_file():
        head = read_regular(root.parent, root.name, MAX_META, count=4)
        raise ValueError(f"{root}: is a file, not an lstmlab checkpoint directory{_sniff(head)}")
    if os.path.lexists(root) and not root.is_dir():
        raise ValueError(f"{root}: not a directory, not an lstmlab checkpoint")
    file = root / META
    meta = loads(read_regular(root, META, MAX_META), file)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f'{file}: not an lstmlab checkpoint (no "format": "{FORMAT}")')
    version = meta.get("version")
    if type(version) is not int or version < 1:
        raise ValueError(f"{file}: invalid format version {version!r}")
    if version > VERSION:
        raise ValueError(
            f"{file}: format version {version} is newer than this lstmlab reads "
            f"({VERSION}); upgrade lstmlab"
        )
    keys = ("step", "epoch", "config", "vocab", "extra", "optimizer", "scheduler", "rng", "files")
    if missing := [k for k in keys if k not in meta]:
        raise ValueError(f"{file}: malformed checkpoint, missing {', '.join(missing)}")
    validate(file, meta)
    if is_run(meta["config"]):
        _check_model_size(root, meta)
    return root, meta


def _check_model_size(root: Path, meta: dict) -> None:
    """Refuse a run whose model, as its config describes it, is not what ``model.safetensors``
    declares: checked on shapes alone, so no config can make us allocate more than is on disk."""
    if MODEL not in meta["files"]:
        raise ValueError(f"{root / META}: lists no {MODEL}")
    declared = read_header(root, MODEL, meta["files"][MODEL]["bytes"])
    expected = model_shapes(meta["config"]["model"])
    problems = [f"missing {k}" for k in expected if k not in declared]
    problems += [f"unexpected {k}" for k in declared if k not in expected]
    problems += [
        f"{k} is {declared[k]} in the file, {shape} by config.model"
        for k, shape in expected.items()
        if k in declared and declared[k] != shape
    ]
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise ValueError(
            f"{root / MODEL}: does not hold the model config.model describes: "
            f"{'; '.join(problems[:3])}{more}"
        )


def _read_tensors(root: Path, meta: dict, name: str) -> dict[str, Tensor]:
    return read_tensors(root, meta["files"], name)


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
    # a scheduler's load_state_dict sets its attributes from the file, whatever they are; an
    # optimizer checks its own state's form, but not that its settings (lr, betas) are finite
    fresh = obj.state_dict()  # type: ignore[attr-defined]
    if what == "optimizer":
        fresh = {"param_groups": [{} for _ in fresh["param_groups"]]}
    if problem := _differs(saved["state_dict"], fresh, f"{what}.state_dict", what == "optimizer"):
        raise ValueError(f"{file}: {problem}")
    return state


def _differs(saved: object, fresh: object, where: str, loose: bool = False) -> str:
    """Where ``saved`` (JSON from the file) differs in form from ``fresh`` (the state of a newly
    built object), or an empty string: unknown keys, other kinds of value, non-finite numbers.
    Keys the fresh state has and the file lacks are left to the object's own loading; ``loose``:
    keys ``fresh`` lacks are only checked for non-finite numbers."""
    if isinstance(saved, float) and not math.isfinite(saved):
        return f"{where}: {saved!r} is not a finite number"
    if isinstance(fresh, dict) and isinstance(saved, dict):
        for key, value in saved.items():
            if key in fresh:
                problem = _differs(value, fresh[key], f"{where}.{key}", loose)
            elif loose:
                problem = _differs(value, None, f"{where}.{key}", loose)
            else:
                problem = f"{where}.{key}: unknown key"
            if problem:
                return problem
        return ""
    if loose and fresh is None:
        items = (
            saved.values() if isinstance(saved, dict) else saved if isinstance(saved, list) else []
        )
        for i, value in enumerate(items):
            if problem := _differs(value, None, f"{where}.{i}", loose):
                return problem
        return ""
    if isinstance(fresh, (list, tuple)):
        if isinstance(saved, dict) and set(saved) == {"__tuple__"}:
            saved = saved["__tuple__"]
        if not isinstance(saved, list) or len(saved) != len(fresh):
            return f"{where}: not a list of {len(fresh)}"
        for i, (a, b) in enumerate(zip(saved, fresh)):
            if problem := _differs(a, b, f"{where}.{i}", loose):
                return problem
        return ""
    if isinstance(fresh, bool) or fresh is None or isinstance(fresh, str):
        return "" if type(saved) is type(fresh) else f"{where}: {saved!r} is not like {fresh!r}"
    if isinstance(fresh, (int, float)):
        if (
            isinstance(saved, bool)
            or not isinstance(saved, (int, float))
            or not math.isfinite(saved)
        ):
            return f"{where}: {saved!r} is not a finite number"
        return ""
    return ""  # tensors and other values are checked by the object's own loading


def _sniff(head: bytes) -> str:
    return (
        " (a zip archive: a torch.save file? lstmlab never unpickles)"
        if head == b"PK\x03\x04"
        else ""
    )


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]
