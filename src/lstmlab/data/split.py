"""Splitting a corpus into train, validation and test, the same way on every machine: whole
documents chosen by checksum (:func:`split_documents`), or, where the documents are too few
to hold any out whole (a single text file), each document's last parts by position
(:func:`split_corpus`)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence


def _check_fractions(valid_fraction: float, test_fraction: float) -> None:
    for name, f in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f < 1:
            raise ValueError(f"{name} must be a number in [0, 1), got {f!r}")
    if valid_fraction + test_fraction >= 1:
        raise ValueError(
            f"valid_fraction + test_fraction must be < 1, got {valid_fraction} + {test_fraction}"
        )


def split_corpus(
    documents: Sequence[str], valid_fraction: float = 0.05, test_fraction: float = 0.05
) -> tuple[list[str], list[str], list[str], str]:
    """Split a corpus into ``(train, valid, test, note)``, ``note`` one line saying what was
    held out.

    Enough documents to hold some out whole (at least 3 at the default fractions): as
    :func:`split_documents`. Fewer, e.g. a single text file (char-rnn's ``input.txt``): each
    document is split by position, at line boundaries: its last ``test_fraction`` is test, the
    ``valid_fraction`` before it validation, the rest training -- the same on every machine.
    """
    _check_fractions(valid_fraction, test_fraction)
    n = len(documents)
    n_valid, n_test = (_count(f, n) for f in (valid_fraction, test_fraction))
    if n - n_valid - n_test >= 1:
        train, valid, test = split_documents(documents, valid_fraction, test_fraction)
        note = (
            f"{n} documents: {len(valid)} held out whole for validation and {len(test)} for "
            "test (chosen by checksum)"
        )
        return train, valid, test, note
    split: tuple[list[str], list[str], list[str]] = ([], [], [])
    for doc in documents:
        a, b = _cut_points(doc, valid_fraction, test_fraction)
        for part, piece in zip(split, (doc[:a], doc[a:b], doc[b:])):
            if piece:
                part.append(piece)
    v, t = f"{valid_fraction:.0%}", f"{test_fraction:.0%}"
    if n == 1:
        doc, (a, b) = documents[0], _cut_points(documents[0], valid_fraction, test_fraction)
        note = (
            f"one document, held out by position at line boundaries: training on "
            f"{_lines(doc, 0, a)}, validation {_lines(doc, a, b)} ({v}), test "
            f"{_lines(doc, b, len(doc))} (the last {t})"
        )
    else:
        note = (
            f"{n} documents, each held out by position at line boundaries: its last {t} for "
            f"test, the {v} before that for validation"
        )
    return *split, note


def _count(fraction: float, n: int) -> int:
    """How many of ``n`` documents ``fraction`` holds out: rounded, halves up, at least 1."""
    return max(1, int(fraction * n + 0.5)) if fraction > 0 else 0


def _cut_points(text: str, valid_fraction: float, test_fraction: float) -> tuple[int, int]:
    """Where validation and test begin in ``text``: line starts near the fractions' positions
    (mid-line only where a piece has no line break to cut at)."""
    n = len(text)
    if n < 3 and (valid_fraction or test_fraction):
        raise ValueError(
            f"a document of {n} characters is too short to hold out validation and test text"
        )
    test = _line_start(text, round(n * (1 - test_fraction)), 0, n) if test_fraction else n
    if not valid_fraction:
        return test, test
    return _line_start(text, round(n * (1 - test_fraction - valid_fraction)), 0, test), test


def _line_start(text: str, at: int, lo: int, hi: int) -> int:
    """The start of a line strictly between ``lo`` and ``hi`` nearest to ``at``; else ``at``
    itself, moved into that range."""
    at = min(max(at, lo + 1), hi - 1)
    after = text.find("\n", at - 1, hi - 1)  # a "\n" at i starts a line at i + 1
    before = text.rfind("\n", lo, at - 1)
    starts = [i + 1 for i in (after, before) if i != -1]
    return min(starts, key=lambda c: abs(c - at)) if starts else at


def _lines(text: str, start: int, end: int) -> str:
    """``"lines 9001-9500"``: the lines ``text[start:end]`` covers, counted from 1."""
    first = text.count("\n", 0, start) + 1
    last = first + text.count("\n", start, max(start, end - 1))
    return f"lines {first}-{last}"


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
    _check_fractions(valid_fraction, test_fraction)
    n = len(documents)
    n_valid, n_test = (_count(f, n) for f in (valid_fraction, test_fraction))
    if n - n_valid - n_test < 1:
        raise ValueError(
            f"split_documents needs at least {n_valid + n_test + 1} documents to "
            f"hold out {n_valid} + {n_test} and train on one; got {n} (a single text "
            "file is one document: split_corpus splits it by position)"
        )
    crc = [zlib.crc32(d.encode("utf-8", "replace")) for d in documents]
    ranked = sorted(range(n), key=lambda k: (crc[k], k))
    test, valid = set(ranked[:n_test]), set(ranked[n_test : n_test + n_valid])
    split: tuple[list[str], list[str], list[str]] = ([], [], [])
    for k, doc in enumerate(documents):
        split[2 if k in test else 1 if k in valid else 0].append(doc)
    return split


__all__ = ["split_corpus", "split_documents"]
