"""Writing a checkpoint directory so that a crash never leaves it half-written.

The protocol, described in :mod:`lstmlab.train.checkpoint`: write every file into ``ckpt.tmp-XXXX``
beside ``ckpt`` and fsync it, rename ``ckpt`` to ``ckpt.old`` and ``ckpt.tmp-XXXX`` to ``ckpt``,
then remove ``ckpt.old``.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from pathlib import Path


def _replace_dir(path: Path, blobs: dict[str, bytes]) -> None:
    """Make ``path`` a directory of the files ``blobs`` (name -> contents), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.with_name(path.name + ".old")
    for stray in path.parent.glob(glob.escape(path.name) + ".tmp-*"):
        shutil.rmtree(stray, ignore_errors=True)  # left by a save that was killed
    tmp = Path(tempfile.mkdtemp(prefix=path.name + ".tmp-", dir=path.parent))
    try:
        for name, data in blobs.items():
            _write(tmp / name, data)
        _fsync_dir(tmp)
        if path.exists():
            if old.exists():  # a save killed after its swap left it; ckpt is newer, complete
                shutil.rmtree(old)
            os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            if old.exists() and not path.exists():
                os.rename(old, path)  # put the previous checkpoint back
            raise
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


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
