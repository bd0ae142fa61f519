"""Damaged variants of a real checkpoint, for test_hostile_checkpoints.py (imported, like
user_cells.py: a module of data, not of tests).

Each variant is a function that damages the copy of a run folder it is given (its
``checkpoint/``), like a careless disk or a hostile sender would; :func:`reseal` rewrites the
sizes and sha256 that ``checkpoint.json`` lists after a tensor file is changed on purpose, so
the damage reaches the checks behind those. ``VARIANTS`` maps a name to ``(damage, words)``:
the error line must name each of ``words``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import safetensors.torch
import torch

META, MODEL = "checkpoint.json", "model.safetensors"


def meta(run: Path) -> dict:
    return json.loads((run / "checkpoint" / META).read_text())


def write_meta(run: Path, value: dict) -> None:
    (run / "checkpoint" / META).write_text(json.dumps(value))


def edit(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """A damage that changes the parsed checkpoint.json in place."""

    def damage(run: Path) -> None:
        m = meta(run)
        change(m)
        write_meta(run, m)

    return damage


def setting(**values) -> Callable[[Path], None]:
    """config.train and config.model both set to ``values`` where they have the key: a
    consistent config, so only the bound on the value can refuse it."""

    def change(m: dict) -> None:
        for part in ("train", "model"):
            m["config"][part].update({k: v for k, v in values.items() if k in m["config"][part]})

    return edit(change)


def reseal(run: Path, name: str = MODEL) -> None:
    """checkpoint.json's size and sha256 of ``name`` made to match the file as it is now."""
    m = meta(run)
    data = (run / "checkpoint" / name).read_bytes()
    m["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    write_meta(run, m)


def weights(change: Callable[[dict[str, torch.Tensor]], None]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        file = run / "checkpoint" / MODEL
        tensors = safetensors.torch.load_file(file)
        change(tensors)
        safetensors.torch.save_file(tensors, file)
        reseal(run)

    return damage


def raw_model(change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        file = run / "checkpoint" / MODEL
        file.write_bytes(change(file.read_bytes()))
        reseal(run)

    return damage


def huge_header(data: bytes) -> bytes:
    """The header declares one tensor of 2^40 float32s, the data stays as small as it was."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    key = next(k for k in header if k != "__metadata__")
    header[key]["shape"] = [1 << 20, 1 << 20]
    header[key]["data_offsets"][1] = header[key]["data_offsets"][0] + (4 << 40)
    new = json.dumps(header).encode()
    return struct.pack("<Q", len(new)) + new + data[8 + n :]


def replace(name: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    """``name`` in checkpoint/ replaced by what ``make(path)`` creates there."""

    def damage(run: Path) -> None:
        path = run / "checkpoint" / name
        path.unlink()
        make(path)

    return damage


def outside_copy(run: Path) -> None:
    """model.safetensors a symlink to an intact copy of itself outside the checkpoint."""
    path = run / "checkpoint" / MODEL
    shutil.copy(path, run / "elsewhere.safetensors")
    path.unlink()
    path.symlink_to(run / "elsewhere.safetensors")


def nested(run: Path) -> None:
    text = json.dumps({**meta(run), "extra": "@"}).replace('"@"', "[" * 100_000 + "]" * 100_000)
    (run / "checkpoint" / META).write_text(text)


def rename_traversal(m: dict) -> None:
    m["files"]["../../model.safetensors"] = m["files"].pop(MODEL)


def only_old(run: Path) -> None:
    os.rename(run / "checkpoint", run / "checkpoint.old")


def _sparse(path: Path) -> None:
    with open(path, "wb") as f:
        f.truncate(1 << 30)


VARIANTS: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    # files that are not regular files inside the folder
    "json-is-dir": (replace(META, Path.mkdir), (META, "directory")),
    "model-is-dir": (replace(MODEL, Path.mkdir), (MODEL, "directory")),
    "model-is-fifo": (replace(MODEL, os.mkfifo), (MODEL, "FIFO")),
    "json-is-fifo": (replace(META, os.mkfifo), (META, "FIFO")),
    "json-to-urandom": (replace(META, lambda p: p.symlink_to("/dev/urandom")), (META, "symlink")),
    "model-to-zero": (replace(MODEL, lambda p: p.symlink_to("/dev/zero")), (MODEL, "symlink")),
    "model-symlink-out": (outside_copy, (MODEL, "symlink out")),
    "json-1GiB": (replace(META, _sparse), (META, "bytes")),
    "checkpoint-is-file": (
        lambda r: (shutil.rmtree(r / "checkpoint"), (r / "checkpoint").write_text("{}")),
        ("checkpoint", "file"),
    ),
    "model-missing": (lambda r: (r / "checkpoint" / MODEL).unlink(), (MODEL, "no such file")),
    # checkpoint.json that is not JSON, too deep, or not of the schema
    "json-not-utf8": (
        lambda r: (r / "checkpoint" / META).write_bytes(b"\xff\xfe{"),
        (META, "JSON"),
    ),
    "json-empty": (lambda r: (r / "checkpoint" / META).write_text(""), (META, "JSON")),
    "json-list": (lambda r: (r / "checkpoint" / META).write_text("[1]"), (META, "format")),
    "json-depth-1e5": (nested, (META, "nested")),
    "format-wrong": (edit(lambda m: m.update(format="other")), (META, "format")),
    "version-newer": (edit(lambda m: m.update(version=2)), (META, "newer")),
    "unknown-top-key": (edit(lambda m: m.update(surprise=1)), ("surprise", "unknown key")),
    "unknown-train-key": (
        edit(lambda m: m["config"]["train"].update(surprise=1)),
        ("config.train.surprise", "unknown key"),
    ),
    "unknown-model-argument": (
        edit(lambda m: m["config"]["model"].update(surprise=1)),
        ("config.model.surprise", "unknown key"),
    ),
    "hidden-size-str": (setting(hidden_size="32"), ("hidden_size", "integer")),
    "model-is-list": (edit(lambda m: m["config"].update(model=[1, 2])), ("config.model",)),
    "train-is-list": (edit(lambda m: m["config"].update(train=[1])), ("config.train",)),
    "no-train": (edit(lambda m: m["config"].pop("train")), ("config.train",)),
    "kind-unknown": (edit(lambda m: m["config"]["model"].update(kind="other")), ("config.model",)),
    "cell-unknown": (setting(cell="nope"), ("cell", "nope")),
    "task-changed": (edit(lambda m: m["config"]["train"].update(task="nope")), ("task", "nope")),
    "cells-disagree": (
        edit(lambda m: m["config"]["model"].update(cell="gru")),
        ("config.model.cell", "gru"),
    ),
    "text-etc": (edit(lambda m: m["config"]["train"].update(text="/etc")), ("text", "/etc")),
    "text-dev": (edit(lambda m: m["config"]["train"].update(text="/dev/urandom")), ("text",)),
    "lr-infinity": (edit(lambda m: m["config"]["train"].update(lr=float("inf"))), ("lr", "finite")),
    "lr-negative": (edit(lambda m: m["config"]["train"].update(lr=-1.0)), ("lr",)),
    "dropout-nan": (setting(dropout=float("nan")), ("dropout",)),
    "step-negative": (edit(lambda m: m.update(step=-1)), ("step",)),
    "step-1e18": (edit(lambda m: m.update(step=10**18)), ("step",)),
    "step-bool": (edit(lambda m: m.update(step=True)), ("step", "integer")),
    "step-float": (edit(lambda m: m.update(step=3.0)), ("step", "integer")),
    "step-beyond-steps": (edit(lambda m: m.update(step=999)), ("step", "999")),
    "epoch-str": (edit(lambda m: m.update(epoch="0")), ("epoch",)),
    "vocab-null": (edit(lambda m: m.update(vocab=None)), ("vocab",)),
    "vocab-short": (edit(lambda m: m["vocab"]["tokens"].pop()), ("vocab", "vocab_size")),
    "vocab-tokens-int": (edit(lambda m: m["vocab"].update(tokens=[1, 2])), ("vocab.tokens",)),
    "best-missing": (edit(lambda m: m["extra"].pop("best")), ("extra", "best")),
    "best-str": (edit(lambda m: m["extra"].update(best="low")), ("extra.best",)),
    "extra-unknown": (edit(lambda m: m["extra"].update(surprise=1)), ("extra.surprise",)),
    "rng-broken": (edit(lambda m: m["rng"].update(python="x")), ("rng.python",)),
    "files-traversal": (edit(rename_traversal), ("files", "../../model.safetensors")),
    "files-bytes-negative": (
        edit(lambda m: m["files"][MODEL].update(bytes=-5)),
        ("files.model.safetensors.bytes",),
    ),
    "scheduler-injected": (
        edit(lambda m: m["scheduler"]["state_dict"].update(optimizer=1)),
        ("scheduler", "optimizer", "unknown key"),
    ),
    "optimizer-lr-nan": (
        edit(lambda m: m["optimizer"]["state_dict"]["param_groups"][0].update(lr=float("nan"))),
        ("optimizer", "lr", "finite"),
    ),
    # sizes that would exhaust memory or time if believed
    "hidden-size-1e7": (setting(hidden_size=10**7), ("hidden_size",)),
    "hidden-size-30000": (setting(hidden_size=30_000), (MODEL, "config.model")),
    "vocab-size-1e8": (
        edit(lambda m: m["config"]["model"].update(vocab_size=10**8)),
        ("vocab_size",),
    ),
    "num-layers-1e5": (setting(num_layers=10**5), ("num_layers",)),
    "gap-1e9": (edit(lambda m: m["config"]["train"].update(gap=10**9)), ("gap",)),
    "eval-batches-1e9": (
        edit(lambda m: m["config"]["train"].update(eval_batches=10**9)),
        ("eval_batches",),
    ),
    # tensor files: cut, corrupt, lying about their size, holding NaN or inf
    "model-truncated": (raw_model(lambda d: d[: len(d) // 2]), (MODEL,)),
    "model-garbage": (raw_model(lambda d: os.urandom(len(d))), (MODEL,)),
    "model-header-huge": (raw_model(huge_header), (MODEL,)),
    "model-sha-differs": (
        lambda r: (r / "checkpoint" / MODEL).write_bytes(os.urandom(64)),
        (MODEL,),
    ),
    "model-shape-wrong": (
        weights(lambda t: t.update({next(iter(t)): torch.zeros(3, 3)})),
        (MODEL, "config.model"),
    ),
}

# Optimizer and scheduler state: read (and refused) by a resumed run; the others never load it.
RESUME_ONLY = {"scheduler-injected", "optimizer-lr-nan"}

# NaN or inf weights, refused when a model is loaded to use or to train on.
NONFINITE = {
    "weights-nan": weights(lambda t: next(iter(t.values())).fill_(float("nan"))),
    "weights-inf": weights(lambda t: next(iter(t.values())).fill_(float("inf"))),
}
