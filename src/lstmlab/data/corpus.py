"""Corpora for language modelling, one string per file: the standard library's source
(:func:`stdlib_corpus`) and any file or folder (:func:`text_corpus`); their split into train,
validation and test is :mod:`lstmlab.data.split`'s (:func:`split_corpus`,
:func:`split_documents`), named here too."""

from __future__ import annotations

import os
import stat
import sysconfig
import warnings
from collections.abc import Iterable
from pathlib import Path

from lstmlab.data.split import split_corpus, split_documents

_NOT_STDLIB = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


def _stdlib_files() -> list[Path]:
    """The standard library's .py files, test folders and installed packages left out."""
    root = Path(sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise FileNotFoundError(f"the standard library's source is not at {str(root)!r}")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _NOT_STDLIB]  # prune, don't descend
        found += [Path(folder, f) for f in files if f.endswith(".py")]
    return sorted(found, key=lambda p: p.relative_to(root).parts)


class CorpusWarning(UserWarning):
    """A corpus entry skipped (not a regular file) or read although it looks binary."""


def _text_files(root: Path) -> list[Path]:
    """Every regular file under ``root``, recursively, hidden files and folders left out.

    Entries are looked at with ``stat`` and never opened: opening a FIFO blocks until someone
    writes to it. FIFOs, devices, sockets, broken links and symlink loops are skipped with a
    :class:`CorpusWarning`; links to folders are not followed (a link to an ancestor would
    make the walk endless), also with a warning. Links to files are read.
    """
    found = []
    for folder, dirs, files in os.walk(root, onerror=_warn_unreadable):
        kept = []
        for d in dirs:
            if d.startswith("."):
                continue
            if os.path.islink(os.path.join(folder, d)):  # os.walk would not descend anyway
                _skip(Path(folder, d), "a link to a folder, not followed")
            else:
                kept.append(d)
        dirs[:] = kept  # prune, don't descend
        for f in files:
            path = Path(folder, f)
            if not f.startswith(".") and _is_regular(path):
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def _is_regular(path: Path) -> bool:
    """Whether ``path`` (a link followed) is a regular file; if not, warn that it is skipped."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:  # a broken link, a symlink loop (ELOOP), no permission
        _skip(path, e.strerror or str(e))
        return False
    if not stat.S_ISREG(mode):
        device = stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if device else "not a file"
        _skip(path, f"{kind}, not a regular file")
        return False
    return True


def _skip(path: Path, why: str) -> None:
    warnings.warn(f"{path}: skipped ({why})", CorpusWarning, stacklevel=4)


def _warn_unreadable(error: OSError) -> None:
    _skip(Path(error.filename or "?"), error.strerror or str(error))


# Where a file looks binary: a NUL, or this share of undecodable bytes, in its first characters.
_SAMPLE, _UNDECODABLE = 8192, 0.1


def _read(paths: Iterable[Path], max_chars: int | None) -> list[str]:
    """The files' texts in order, empty ones skipped, the last cut so the total is max_chars;
    a file that looks binary is read (as its user asked) with a :class:`CorpusWarning`."""
    if max_chars is not None and (not isinstance(max_chars, int) or max_chars < 1):
        raise ValueError(f"max_chars must be None or an integer >= 1, got {max_chars!r}")
    docs, total = [], 0
    for path in paths:
        if max_chars is not None and total >= max_chars:
            break
        with open(path, encoding="utf-8", errors="replace") as f:  # newlines become "\n"
            text = f.read(-1 if max_chars is None else max_chars - total)
        sample = text[:_SAMPLE]
        if "\0" in sample or (
            len(sample) >= 256 and sample.count("\ufffd") > _UNDECODABLE * len(sample)
        ):
            warnings.warn(
                f"{path}: looks binary (NUL bytes or undecodable UTF-8), not text; read anyway",
                CorpusWarning,
                stacklevel=3,
            )
        if text:
            docs.append(text)
            total += len(text)
    return docs


def stdlib_corpus(max_chars: int | None = None) -> list[str]:
    """The Python standard library's own source, one document per ``.py`` file.

    Read from ``sysconfig.get_paths()["stdlib"]`` in sorted path order (so it is the same on
    every call), leaving out test folders (``test``, ``tests``, ``idle_test``),
    ``site-packages`` and empty files; decoded as UTF-8 with undecodable bytes replaced. Always
    present, so it is the corpus that needs nothing installed. ``max_chars`` caps the total: the
    last document is cut so the characters add up to exactly ``max_chars``.
    """
    return _read(_stdlib_files(), max_chars)


def text_corpus(path: str | os.PathLike, max_chars: int | None = None) -> list[str]:
    """A text file (one document) or a folder of them (every non-hidden file, recursively,
    sorted by path, one document each), read as UTF-8 with undecodable bytes replaced and empty
    files skipped. ``max_chars`` caps the total as in :func:`stdlib_corpus`."""
    root = Path(path)
    try:
        mode = os.stat(root).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"text corpus not found: {str(root)!r}") from None
    except OSError as e:  # e.g. a symlink loop
        raise ValueError(f"cannot read the text corpus at {str(root)!r}: {e.strerror}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ValueError(
            f"the text corpus at {str(root)!r} is not a file or folder (a FIFO, device or "
            "socket, which would block or never end)"
        )
    docs = _read([root] if stat.S_ISREG(mode) else _text_files(root), max_chars)
    if not docs:
        raise ValueError(f"the text corpus at {str(root)!r} is empty: no file with any text")
    return docs


__all__ = ["CorpusWarning", "stdlib_corpus", "text_corpus", "split_corpus", "split_documents"]
