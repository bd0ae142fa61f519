"""Reading the files of a checkpoint directory defensively: plain files inside it, bounded.

A checkpoint may come from anywhere, so a name in it may be a folder, a FIFO (reading blocks
forever), a device (``/dev/zero`` never ends) or a symlink out of the directory; each is refused
before a byte is read, and no file is read past the size it is allowed. JSON is parsed only
after its nesting depth is known to be small, so a deeply nested file cannot exhaust the stack.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

# Deeper nesting than any file lstmlab writes (the optimizer state is about 6 levels deep).
MAX_DEPTH = 64
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _regular_size(root: Path, file: Path, limit: int) -> int:
    """The size of ``file``, checked: a regular file inside ``root``, at most ``limit`` bytes."""
    try:
        info = os.lstat(file)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no such file", str(file)) from None
    if stat.S_ISLNK(info.st_mode):
        target = Path(os.path.realpath(file))
        if not target.is_relative_to(os.path.realpath(root)):
            raise ValueError(f"{file}: a symlink out of the checkpoint folder (to {target})")
        info = os.stat(file)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{file}: {_kind(info.st_mode)}, not a regular file")
    if info.st_size > limit:
        raise ValueError(f"{file}: {info.st_size} bytes, more than the {limit} allowed")
    return info.st_size


def read_regular(root: Path, name: str, limit: int, *, start: int = 0, count: int = -1) -> bytes:
    """Bytes of the file ``root / name`` (from ``start``, ``count`` of them or all), which must
    be a regular file inside ``root`` of at most ``limit`` bytes."""
    file = root / name
    _regular_size(root, file, limit)
    # O_NONBLOCK: a FIFO swapped in after the check must not block the open
    fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            raise ValueError(f"{file}: changed while being read")
        f.seek(start)
        return f.read(min(info.st_size - start, limit) if count < 0 else min(count, limit))


def file_size(root: Path, name: str, limit: int) -> int:
    """The size of ``root / name``, checked as :func:`read_regular` checks it."""
    return _regular_size(root, root / name, limit)


def loads(data: bytes, file: Path) -> Any:
    """``data`` parsed as JSON, after checking its nesting is at most :data:`MAX_DEPTH` deep."""
    depth = _depth(data)
    if depth > MAX_DEPTH:
        raise ValueError(f"{file}: JSON nested {depth} levels deep, more than {MAX_DEPTH} allowed")
    try:
        return json.loads(data.decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        head = " (a zip archive: a torch.save file? lstmlab never unpickles)"
        head = head if data[:4] == b"PK\x03\x04" else ""
        message = " ".join(str(e).split())[:200]
        raise ValueError(
            f"{file}: not valid JSON, truncated or corrupt{head} ({message})"
        ) from None


def _depth(data: bytes) -> int:
    # brackets inside strings do not nest: drop the strings, then a running sum of opens - closes
    bare = np.frombuffer(_STRING.sub(b'""', data), dtype=np.uint8)
    opens = (bare == ord("[")) | (bare == ord("{"))
    closes = (bare == ord("]")) | (bare == ord("}"))
    steps = opens.astype(np.int64) - closes.astype(np.int64)
    return int(np.cumsum(steps).max()) if len(steps) else 0


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"
