"""Tokens and ids: :func:`tokenize` splits text by character or word, :class:`Vocab` maps the
tokens to ids and back, and saves itself as plain JSON (:meth:`Vocab.to_json`), never pickled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor

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
            tokens.append(EOS)  # one <eos> per newline, blank lines included
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
    def build(
        cls,
        tokens: Iterable[str],
        min_count: int = 1,
        max_size: int | None = None,
        *,
        level: str = "char",
    ) -> Vocab:
        """Count ``tokens``; keep those seen ``min_count`` times, at most ``max_size`` entries
        (``"<unk>"`` included), the most frequent first."""
        if not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
        if max_size is not None and (not isinstance(max_size, int) or max_size < 1):
            raise ValueError(f"max_size must be None or an integer >= 1, got {max_size!r}")
        counts = Counter(tokens)
        counts.pop(UNK, None)  # a literal "<unk>" in the text is ours
        kept = sorted(
            (t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t)
        )  # most frequent first, then A-Z
        return cls([UNK, *kept[: None if max_size is None else max_size - 1]], level)

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[str],
        min_count: int = 1,
        max_size: int | None = None,
        *,
        level: str = "char",
    ) -> Vocab:
        """:meth:`build` over every token of every document."""
        return cls.build(
            (t for d in documents for t in tokenize(d, level)), min_count, max_size, level=level
        )

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


__all__ = ["UNK", "EOS", "LEVELS", "tokenize", "Vocab"]
