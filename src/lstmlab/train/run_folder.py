"""The run folder of a training run: one process at a time, saves that fail in one line, stop
signals that end a run with a checkpoint, and a metrics log that matches the checkpoint.

- :class:`RunLock` holds ``OUT/.lock`` (``fcntl.flock``) for the life of a run, so two runs
  started on the same folder cannot both pass the "already holds a run" check and then write
  over each other. The kernel drops the lock when the process ends, however it ends.
- :class:`StopSignals` turns SIGINT and SIGTERM into a request that the loop reads between
  steps (where the state is consistent), saves a checkpoint at, and ends the run with
  :class:`RunStopped`.
- :func:`save_or_fail` makes an ``OSError`` of a save (a full disk) a :class:`TrainingError`.
- :func:`truncate_log` drops the records a resumed run is about to log again.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

from lstmlab.train.checkpoint import save_checkpoint

try:
    import fcntl
except ImportError:  # not on POSIX: runs are not locked
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the last good checkpoint is kept."""


class RunStopped(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the run after a checkpoint at ``step`` in ``out``.

    A ``KeyboardInterrupt``, so that code catching Ctrl-C around :func:`train` still does;
    ``exit_code`` is the shell's code for the signal (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int, step: int, out: Path) -> None:
        self.signum, self.step, self.out = signum, step, out
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"{name} stopped the run at step {step}; saved {out / 'checkpoint'}")


class RunLock:
    """Hold ``out/.lock`` for the life of a run (a context manager); refuse a held folder at once.

    The lock file stays in place after the run: removing it would let a process that opened
    the old file and one that creates a new one both hold "the" lock. It holds the holder's pid,
    named in the refusal. ``enabled=False`` (the other ranks of a data-parallel run, which never
    write) makes it do nothing.
    """

    def __init__(self, out: Path, enabled: bool = True) -> None:
        self.out, self.enabled = out, enabled
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        if not self.enabled or fcntl is None:
            return self
        path = self.out / LOCK
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise TrainingError(f"cannot use {self.out} as a run folder: {_reason(e)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise TrainingError(
                f"{self.out} is in use: another run holds it"
                + (f" (pid {holder})" if holder.isdigit() else "")
                + "; wait for it to end, or choose another --out"
            ) from None
        except OSError as e:  # e.g. a network filesystem without flock: train unlocked
            os.close(fd)
            warnings.warn(f"{path}: cannot lock the run folder ({_reason(e)})", stacklevel=2)
            return self
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = None


class StopSignals:
    """While active, SIGINT and SIGTERM set ``received`` (the signal number) instead of ending
    the process, for the loop to stop at the next step boundary; a second signal interrupts at
    once (``KeyboardInterrupt``: a save under way removes its temporary folder). Signals only
    reach the main thread, so elsewhere this does nothing; a signal the process was started to
    ignore (``nohup``) stays ignored."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def save_or_fail(path: Path, **kwargs: Any) -> None:
    """:func:`save_checkpoint` at ``path``; an ``OSError`` (a full disk, no permission) becomes
    a one-line :class:`TrainingError`. The save is atomic: ``path`` keeps its last complete
    checkpoint and the temporary folder is gone."""
    try:
        save_checkpoint(path, **kwargs)
    except OSError as e:
        raise TrainingError(
            f"could not save {path}: {_reason(e)}; it keeps its last complete checkpoint"
        ) from None


def truncate_log(path: Path, step: int) -> None:
    """Keep the records of the JSON-lines log ``path`` up to ``step`` (the checkpoint a run
    resumes from), so the steps it runs again are logged once; a torn last line (a process
    killed mid-write) goes too. Rewritten atomically: a temporary file, then a rename."""
    if not path.exists():
        return
    text = path.read_text(errors="replace")
    kept = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line + "\n")
    if "".join(kept) == text:
        return  # nothing to drop: the file stays as it is
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w") as f:
            f.writelines(kept)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise TrainingError(f"could not rewrite {path}: {_reason(e)}") from None


def _reason(e: OSError) -> str:
    """An OSError in a few words: ``[Errno 28] No space left on device``."""
    return f"[Errno {e.errno}] {e.strerror}" if e.errno and e.strerror else str(e) or repr(e)
