"""Corpora for language modelling, one string per file: the standard library's source
(:func:`stdlib_corpus`), any file or folder (:func:`text_corpus`), and a split into train,
validation and test by whole documents (:func:`split_documents`)."""

from __future__ import annotations

import os
import sysconfig
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

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


def _text_files(root: Path) -> list[Path]:
    """Every file under ``root``, recursively, hidden files and folders left out."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(folder, f) for f in files if not f.startswith(".")]
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def _read(paths: Iterable[Path], max_chars: int | None) -> list[str]:
    """The files' texts in order, empty ones skipped, the last cut so the total is max_chars."""
    if max_chars is not None and (not isinstance(max_chars, int) or max_chars < 1):
        raise ValueError(f"max_chars must be None or an integer >= 1, got {max_chars!r}")
    docs, total = [], 0
    for path in paths:
        if max_chars is not None and total >= max_chars:
            break
        text = path.read_text(encoding="utf-8", errors="replace")  # newlines become "\n"
        if max_chars is not None:
            text = text[: max_chars - total]
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
    if not root.exists():
        raise FileNotFoundError(f"text corpus not found: {str(root)!r}")
    docs = _read([root] if root.is_file() else _text_files(root), max_chars)
    if not docs:
        raise ValueError(f"the text corpus at {str(root)!r} is empty: no file with any text")
    return docs


def split_documents(
    documents: Sequence[str], valid_fraction: float = 0.05, test_fraction: float = 0.05
) -> tuple[list[str], list[str], list[str]]:
    """Split whole documents into ``(train, valid, test)``, the same way on every machine.

    Documents are ranked by the CRC-32 of their UTF-8 text (ties by position): the first
    ``n_test`` go to test, the next ``n_valid`` to validation, the rest to training, and each
    split keeps the corpus order. ``n = round(fraction * len(documents))`` (halves up), at least
    1 for a positive fraction. So the held-out files are spread through the corpus rather than
    being its tail, and no library version or random seed can change the split.
    """
    for name, f in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f < 1:
            raise ValueError(f"{name} must be a number in [0, 1), got {f!r}")
    if valid_fraction + test_fraction >= 1:
        raise ValueError(
            f"valid_fraction + test_fraction must be < 1, got {valid_fraction} + {test_fraction}"
        )
    n = len(documents)
    n_valid, n_test = (
        max(1, int(f * n + 0.5)) if f > 0 else 0 for f in (valid_fraction, test_fraction)
    )
    if n - n_valid - n_test < 1:
        raise ValueError(
            f"split_documents needs at least {n_valid + n_test + 1} documents to "
            f"hold out {n_valid} + {n_test} and train on one; got {n} (a single text "
            "file is one document: give a folder of files)"
        )
    crc = [zlib.crc32(d.encode("utf-8", "replace")) for d in documents]
    ranked = sorted(range(n), key=lambda k: (crc[k], k))
    test, valid = set(ranked[:n_test]), set(ranked[n_test : n_test + n_valid])
    split: tuple[list[str], list[str], list[str]] = ([], [], [])
    for k, doc in enumerate(documents):
        split[2 if k in test else 1 if k in valid else 0].append(doc)
    return split


__all__ = ["stdlib_corpus", "text_corpus", "split_documents"]
