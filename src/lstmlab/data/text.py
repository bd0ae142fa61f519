"""Text for language modelling: corpora, a vocabulary, and streams for truncated BPTT.

The path from text to batches::

    docs = stdlib_corpus(max_chars=2_000_000)          # or text_corpus("my/folder")
    train, valid, test = split_documents(docs)
    vocab = Vocab.from_documents(train, level="char")
    stream = TokenStream([vocab.encode(vocab.tokenize(d)) for d in train], batch_size=32, bptt=64)
    for inputs, targets, starts in stream:             # each (32, 64)
        ...

A document is one string (one file). Vocabularies are saved as plain JSON beside a checkpoint
(:meth:`Vocab.to_json`), never pickled.
"""

from __future__ import annotations

import math
import os
import sysconfig
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from .._checks import check_positive_int

UNK, EOS = "<unk>", "<eos>"
LEVELS = ("char", "word")


def _check_level(level: object) -> str:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    return level


def tokenize(text: str, level: str) -> list[str]:
    """Split ``text`` into characters (``"char"``) or words (``"word"``).

    Character level keeps every character, spaces and newlines included. Word level splits each
    line on whitespace and puts ``"<eos>"`` where each newline was, as the Penn Treebank does:
    ``"a b\\nc"`` -> ``["a", "b", "<eos>", "c"]``.
    """
    if _check_level(level) == "char":
        return list(text)
    tokens: list[str] = []
    for k, line in enumerate(text.split("\n")):
        if k:
            tokens.append(EOS)                  # one <eos> per newline, blank lines included
        tokens += line.split()
    return tokens


class Vocab:
    """Tokens <-> ids. Index 0 is ``"<unk>"``: every symbol not in the vocabulary encodes to 0.

    Keeping ``"<unk>"`` at a fixed index means a model trained on one corpus can read any text
    (rare or unseen symbols all share one embedding), and a corpus that already spells its rare
    words ``"<unk>"`` (Penn Treebank) maps them to the same id. The other tokens follow by
    descending count, ties in string order, so the same tokens give the same ids in any order.

    Args:
        tokens: the vocabulary, id order; ``tokens[0]`` must be ``"<unk>"``.
        level: ``"char"`` or ``"word"``, how :meth:`tokenize` splits text.

    Example::

        >>> vocab = Vocab.build("hello world", level="char")
        >>> vocab.encode("hold!")                       # "!" is unknown -> 0
        tensor([6, 2, 1, 4, 0])
        >>> "".join(vocab.decode([6, 2, 1, 4]))
        'hold'
    """

    def __init__(self, tokens: Sequence[str], level: str) -> None:
        self.level = _check_level(level)
        self.tokens = tuple(tokens)
        if not self.tokens or self.tokens[0] != UNK:
            raise ValueError(f"tokens[0] must be {UNK!r}, got {self.tokens[:1]!r}")
        self.index = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            twice = sorted(t for t, n in Counter(self.tokens).items() if n > 1)
            raise ValueError(f"tokens must be unique; repeated: {twice[:10]}")

    @classmethod
    def build(cls, tokens: Iterable[str], min_count: int = 1, max_size: int | None = None, *,
              level: str = "char") -> Vocab:
        """Count ``tokens``; keep those seen ``min_count`` times, at most ``max_size`` entries
        (``"<unk>"`` included), the most frequent first."""
        if not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
        if max_size is not None and (not isinstance(max_size, int) or max_size < 1):
            raise ValueError(f"max_size must be None or an integer >= 1, got {max_size!r}")
        counts = Counter(tokens)
        counts.pop(UNK, None)                   # a literal "<unk>" in the text is ours
        kept = sorted((t for t, n in counts.items() if n >= min_count),
                      key=lambda t: (-counts[t], t))            # most frequent first, then A-Z
        return cls([UNK, *kept[:None if max_size is None else max_size - 1]], level)

    @classmethod
    def from_documents(cls, documents: Iterable[str], min_count: int = 1,
                       max_size: int | None = None, *, level: str = "char") -> Vocab:
        """:meth:`build` over every token of every document."""
        return cls.build((t for d in documents for t in tokenize(d, level)), min_count, max_size,
                         level=level)

    def tokenize(self, text: str) -> list[str]:
        """``text`` split at this vocabulary's level (see :func:`tokenize`)."""
        return tokenize(text, self.level)

    def encode(self, tokens: Iterable[str]) -> Tensor:
        """Tokens -> ids, a LongTensor (N,); unknown tokens -> 0 (``"<unk>"``)."""
        get = self.index.get
        return torch.tensor([get(t, 0) for t in tokens], dtype=torch.long)

    def decode(self, ids: Tensor | Iterable[int]) -> list[str]:
        """Ids (a 1-D tensor or a sequence of ints) -> tokens."""
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        bad = [i for i in ids if not isinstance(i, int) or not 0 <= i < len(self.tokens)]
        if bad:
            raise ValueError(f"ids must be integers in [0, {len(self.tokens)}); got {bad[:5]}")
        return [self.tokens[i] for i in ids]

    def to_json(self) -> dict:
        """A plain-JSON form: ``{"level": ..., "tokens": [...]}`` (id order)."""
        return {"level": self.level, "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, data: Mapping) -> Vocab:
        """The inverse of :meth:`to_json`."""
        if not isinstance(data, Mapping) or not {"level", "tokens"} <= data.keys():
            raise ValueError("a vocabulary's JSON must be an object with 'level' and 'tokens'")
        tokens = data["tokens"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError("a vocabulary's 'tokens' must be a list of strings")
        return cls(tokens, data["level"])

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and (self.level, self.tokens) == (other.level, other.tokens)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Vocab(level={self.level!r}, size={len(self)})"


# ---- corpora: one string per file ---------------------------------------------------------

_NOT_STDLIB = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


def _stdlib_files() -> list[Path]:
    """The standard library's .py files, test folders and installed packages left out."""
    root = Path(sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise FileNotFoundError(f"the standard library's source is not at {str(root)!r}")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _NOT_STDLIB]            # prune, don't descend
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
        text = path.read_text(encoding="utf-8", errors="replace")     # newlines become "\n"
        if max_chars is not None:
            text = text[:max_chars - total]
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


def split_documents(documents: Sequence[str], valid_fraction: float = 0.05,
                    test_fraction: float = 0.05) -> tuple[list[str], list[str], list[str]]:
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
        raise ValueError(f"valid_fraction + test_fraction must be < 1, got "
                         f"{valid_fraction} + {test_fraction}")
    n = len(documents)
    n_valid, n_test = (max(1, int(f * n + 0.5)) if f > 0 else 0
                       for f in (valid_fraction, test_fraction))
    if n - n_valid - n_test < 1:
        raise ValueError(f"split_documents needs at least {n_valid + n_test + 1} documents to "
                         f"hold out {n_valid} + {n_test} and train on one; got {n} (a single text "
                         "file is one document: give a folder of files)")
    crc = [zlib.crc32(d.encode("utf-8", "replace")) for d in documents]
    ranked = sorted(range(n), key=lambda k: (crc[k], k))
    test, valid = set(ranked[:n_test]), set(ranked[n_test:n_test + n_valid])
    split: tuple[list[str], list[str], list[str]] = ([], [], [])
    for k, doc in enumerate(documents):
        split[2 if k in test else 1 if k in valid else 0].append(doc)
    return split


# ---- streams for truncated backpropagation through time -----------------------------------

class Chunk(NamedTuple):
    """One step of truncated BPTT: ``T = bptt`` (fewer in the last chunk)."""

    inputs: Tensor      # (B, T) token ids
    targets: Tensor     # (B, T) the token after each input: inputs shifted left by one
    starts: Tensor      # (B, T) bool, True where inputs[b, t] is the first token of a document


class TokenStream:
    """Documents laid end to end in ``batch_size`` parallel streams, read ``bptt`` steps at a time.

    As the batchify of Zaremba et al. (2014): the documents are concatenated (N tokens), the last
    ``N mod batch_size`` tokens dropped, and stream ``b`` is the ``b``-th of ``batch_size`` equal
    slices, ``S = N // batch_size`` tokens. Chunk ``k`` holds steps ``[k * bptt, (k + 1) * bptt)``
    of every stream with, as targets, the step after; every token but a stream's first is a
    target exactly once per pass. The last chunk is kept even when short (``T < bptt``), so an
    evaluation pass scores all ``batch_size * (S - 1)`` targets; ``len(stream)`` counts it.

    What the trainer does (truncated BPTT):
        - carry each stream's state from one chunk to the next, detached from the graph;
          start a pass from zeros (a stream's first token gets zero state);
        - at every step ``t``, zero the state of the rows where ``starts[:, t]`` is True *before*
          reading ``inputs[:, t]``, e.g. ``h = h.masked_fill(starts[:, t, None], 0)``: a new
          document should not see the previous one. A trainer that runs whole chunks through a
          layer (no per-step reset) may ignore ``starts``; Zaremba et al. carried state across
          sentence boundaries too. A document's last target is the next document's first token.

    Iterating is a cursor: it yields chunks from ``position`` on, advancing as it hands each out,
    and a finished pass rewinds to chunk 0. ``state_dict()`` after chunk ``k`` is handed out holds
    ``position = k + 1``; loading it into a stream of the same documents continues at chunk
    ``k + 1``. Random access: ``stream[k]``.

    Args:
        documents: 1-D integer tensors (e.g. :meth:`Vocab.encode` of each document); the
            chunks are on their device.
        batch_size: parallel streams ``B``.
        bptt: steps per chunk.

    Example::

        >>> stream = TokenStream([torch.arange(10), torch.arange(10, 16)], batch_size=2, bptt=3)
        >>> inputs, targets, starts = stream[0]         # the streams: tokens 0-7 and 8-15
        >>> inputs.tolist(), targets.tolist()
        ([[0, 1, 2], [8, 9, 10]], [[1, 2, 3], [9, 10, 11]])
        >>> starts.tolist(), len(stream)                # the second document starts at 10
        ([[True, False, False], [False, False, True]], 3)
    """

    def __init__(self, documents: Sequence[Tensor], batch_size: int, bptt: int) -> None:
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.bptt = check_positive_int("bptt", bptt)
        documents = list(documents)
        for k, doc in enumerate(documents):
            if not isinstance(doc, Tensor) or doc.is_floating_point() or doc.is_complex() \
                    or doc.dtype == torch.bool:
                got = doc.dtype if isinstance(doc, Tensor) else type(doc).__name__
                raise TypeError(f"documents[{k}] must be an integer tensor of token ids, got {got}")
            if doc.dim() != 1:
                raise ValueError(f"documents[{k}] must be 1-D (N,), got shape {tuple(doc.shape)}")
        lengths = torch.tensor([len(d) for d in documents], dtype=torch.long)
        total = int(lengths.sum())
        self.steps = total // batch_size                      # S, tokens per stream
        if self.steps < 2:
            raise ValueError(f"documents must hold at least 2 * batch_size = {2 * batch_size} "
                             f"tokens (two per stream, to predict one); got {total}")
        data = torch.cat([d.long() for d in documents])                      # (N,)
        first = torch.zeros(total, dtype=torch.bool, device=data.device)     # (N,)
        offsets = lengths.cumsum(0) - lengths                                # each doc's start
        first[offsets[lengths > 0].to(data.device)] = True                   # empty docs: none
        used = self.steps * batch_size
        self._tokens = data[:used].view(batch_size, self.steps)              # (B, S)
        self._starts = first[:used].view(batch_size, self.steps)             # (B, S)
        self.position = 0

    def __len__(self) -> int:
        return math.ceil((self.steps - 1) / self.bptt)        # the last input is step S - 2

    def __getitem__(self, k: int) -> Chunk:
        if not isinstance(k, int) or not 0 <= k < len(self):
            raise IndexError(f"chunk index must be in [0, {len(self)}), got {k!r}")
        i, j = k * self.bptt, min((k + 1) * self.bptt, self.steps - 1)
        # clones: a trainer may write into its batch without corrupting the stream
        return Chunk(self._tokens[:, i:j].clone(), self._tokens[:, i + 1:j + 1].clone(),
                     self._starts[:, i:j].clone())

    def __iter__(self) -> Iterator[Chunk]:
        while self.position < len(self):
            chunk = self[self.position]
            self.position += 1
            yield chunk
        self.position = 0

    def state_dict(self) -> dict[str, int]:
        """Where the stream is, plus its layout (checked on load); plain JSON."""
        return {"position": self.position, "batch_size": self.batch_size, "bptt": self.bptt,
                "steps": self.steps}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Continue at ``state["position"]``; the layout must match this stream's."""
        mine = self.state_dict()
        for key in ("batch_size", "bptt", "steps"):
            if state.get(key) != mine[key]:
                raise ValueError(f"state {key}={state.get(key)!r} does not match this stream's "
                                 f"{key}={mine[key]}: it was saved from other data or settings")
        position = state.get("position")
        if not isinstance(position, int) or not 0 <= position <= len(self):
            raise ValueError(f"state position must be an integer in [0, {len(self)}], "
                             f"got {position!r}")
        self.position = position

    def __repr__(self) -> str:
        return (f"TokenStream(batch_size={self.batch_size}, bptt={self.bptt}, "
                f"steps={self.steps}, chunks={len(self)})")


__all__ = ["UNK", "EOS", "LEVELS", "tokenize", "Vocab", "stdlib_corpus", "text_corpus",
           "split_documents", "TokenStream", "Chunk"]
