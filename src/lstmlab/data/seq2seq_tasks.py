"""Toy translation tasks for encoder-decoders, drawn on the fly from a seeded ``torch.Generator``.

- :class:`DateTask`: a date written in one of several human formats ("24 November 2026",
  "Nov 24, 2026", "24.11.2026", ...) -> ISO 8601 ("2026-11-24"). The classic attention demo: the
  alignment is visible (the year's digits attend to the year, the month to the month's name).
- :class:`ReverseTask`: a sequence of digits -> the same digits reversed.

Conventions (shared by both): characters are tokens; ids 0, 1, 2 are ``PAD``, ``BOS``, ``EOS`` in
both vocabularies. ``batch(B, generator)`` returns, batch-first,

- ``src`` (B, S) long: each source, padded with ``PAD`` (no BOS or EOS);
- ``src_lengths`` (B,) long: valid source tokens per row;
- ``tgt`` (B, T) long: ``BOS, y_1, ..., y_n, EOS`` then ``PAD``. Teacher forcing reads
  ``tgt[:, :-1]`` and predicts ``tgt[:, 1:]`` (``PAD`` positions ignored by the loss).

:func:`exact_match` scores decoded outputs: a row counts only if every token up to and including
``EOS`` is right.
"""

from __future__ import annotations

import datetime

import torch
from torch import Tensor

from lstmlab.nn._checks import check_positive_int

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ["<pad>", "<s>", "</s>"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


class Seq2SeqTask:
    """Base of the tasks: character vocabularies and batching; a subclass writes :meth:`pairs`.

    Attributes:
        src_vocab, tgt_vocab: the tokens (lists of str; ids 0, 1, 2 are PAD, BOS, EOS).
    """

    src_vocab: list[str]
    tgt_vocab: list[str]

    def pairs(self, batch_size: int, generator: torch.Generator) -> list[tuple[str, str]]:
        """``batch_size`` (source, target) strings drawn from ``generator`` alone."""
        raise NotImplementedError

    def batch(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """``(src (B, S), src_lengths (B,), tgt (B, T))`` as in the module docstring."""
        check_positive_int("batch_size", batch_size)
        pairs = self.pairs(batch_size, generator)
        src = [self.encode_src(s) for s, _ in pairs]
        tgt = [[BOS, *self.encode_tgt(t), EOS] for _, t in pairs]
        lengths = torch.tensor([len(s) for s in src], dtype=torch.long)
        return _pad(src), lengths, _pad(tgt)

    def encode_src(self, text: str) -> list[int]:
        return [self._src_ids[ch] for ch in text]

    def encode_tgt(self, text: str) -> list[int]:
        return [self._tgt_ids[ch] for ch in text]

    def decode_tgt(self, ids: Tensor | list[int]) -> str:
        """Target ids -> text, stopping at EOS and skipping BOS/PAD."""
        out = []
        for i in ids.tolist() if isinstance(ids, Tensor) else ids:
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.tgt_vocab[i])
        return "".join(out)

    def _vocabularies(self, src_chars: str, tgt_chars: str) -> None:
        self.src_vocab = SPECIALS + sorted(set(src_chars))
        self.tgt_vocab = SPECIALS + sorted(set(tgt_chars))
        self._src_ids = {ch: i for i, ch in enumerate(self.src_vocab)}
        self._tgt_ids = {ch: i for i, ch in enumerate(self.tgt_vocab)}


def _pad(rows: list[list[int]]) -> Tensor:
    out = torch.full((len(rows), max(map(len, rows))), PAD, dtype=torch.long)
    for b, row in enumerate(rows):
        out[b, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


# One date in each format: day d, month m (1-12), year y. Days are unpadded in the written formats
# and zero-padded in the numeric one, as people write them.
DATE_FORMATS = (
    lambda d, m, y: f"{d} {MONTHS[m - 1]} {y}",  # 24 November 2026
    lambda d, m, y: f"{MONTHS[m - 1]} {d}, {y}",  # November 24, 2026
    lambda d, m, y: f"{d} {MONTHS[m - 1][:3]} {y}",  # 24 Nov 2026
    lambda d, m, y: f"{MONTHS[m - 1][:3]} {d}, {y}",  # Nov 24, 2026
    lambda d, m, y: f"{d:02d}.{m:02d}.{y}",  # 24.11.2026
    lambda d, m, y: f"{d} {MONTHS[m - 1].lower()} {y}",  # 24 november 2026
    lambda d, m, y: f"{MONTHS[m - 1].upper()} {d}, {y}",  # NOVEMBER 24, 2026
)


class DateTask(Seq2SeqTask):
    """Human-written dates -> ISO 8601: "24 November 2026" -> "2026-11-24".

    Dates are uniform over ``[first_year, last_year]``; the format is uniform over
    :data:`DATE_FORMATS` (7 formats, sources of 10 to 18 characters; targets 10 characters).
    Every ``held_out_every``-th day (by ``date.toordinal()``) is kept for evaluation: a task built
    with ``held_out=True`` draws only those days, one with ``held_out=False`` never does, so
    held-out accuracy measures dates the model has never seen in training.

    Example::

        >>> task = DateTask()
        >>> task.pairs(2, torch.Generator().manual_seed(0))
        [('October 10, 2036', '2036-10-10'), ('30 Sep 1997', '1997-09-30')]
        >>> src, src_lengths, tgt = task.batch(2, torch.Generator().manual_seed(0))  # the same
        >>> src.shape, src_lengths.tolist(), tgt.shape
        (torch.Size([2, 16]), [16, 11], torch.Size([2, 12]))
    """

    def __init__(
        self,
        first_year: int = 1950,
        last_year: int = 2049,
        held_out_every: int = 10,
        held_out: bool = False,
    ) -> None:
        check_positive_int("first_year", first_year)
        if last_year < first_year or last_year > 9999:
            raise ValueError(
                f"last_year must lie in [first_year={first_year}, 9999]; got {last_year}"
            )
        self.held_out_every = check_positive_int("held_out_every", held_out_every, minimum=2)
        self.held_out = held_out
        self._first = datetime.date(first_year, 1, 1).toordinal()
        self._days = datetime.date(last_year, 12, 31).toordinal() - self._first + 1
        months = "".join(MONTHS)
        self._vocabularies(
            months + months.upper() + months.lower() + "0123456789 ,.", "0123456789-"
        )

    def pairs(self, batch_size: int, generator: torch.Generator) -> list[tuple[str, str]]:
        n, k = batch_size, self.held_out_every
        # Held-out days are those whose ordinal is divisible by k. Rejection sampling keeps the
        # draw uniform over the chosen days (and determined by the generator alone).
        index = torch.empty(0, dtype=torch.long)
        while index.numel() < n:
            draw = torch.randint(0, self._days, (2 * n,), generator=generator)
            keep = ((self._first + draw) % k == 0) == self.held_out
            index = torch.cat([index, draw[keep]])
        index = index[:n]
        formats = torch.randint(0, len(DATE_FORMATS), (n,), generator=generator)
        out = []
        for i, f in zip(index.tolist(), formats.tolist()):
            date = datetime.date.fromordinal(self._first + i)
            out.append((DATE_FORMATS[f](date.day, date.month, date.year), date.isoformat()))
        return out

    def __repr__(self) -> str:
        return f"DateTask(held_out={self.held_out})"


class ReverseTask(Seq2SeqTask):
    """Digits -> the same digits reversed: "30417" -> "71403".

    Lengths are uniform over ``[min_length, max_length]``, digits uniform over the first
    ``num_digits`` of 0-9.

    Example::

        >>> task = ReverseTask(min_length=2, max_length=5)
        >>> task.pairs(2, torch.Generator().manual_seed(0))
        [('30', '03'), ('37316', '61373')]
    """

    def __init__(self, min_length: int = 1, max_length: int = 10, num_digits: int = 10) -> None:
        self.min_length = check_positive_int("min_length", min_length)
        self.max_length = check_positive_int("max_length", max_length, minimum=min_length)
        self.num_digits = check_positive_int("num_digits", num_digits, minimum=2)
        if num_digits > 10:
            raise ValueError(f"num_digits must lie in [2, 10]; got {num_digits}")
        digits = "0123456789"[:num_digits]
        self._vocabularies(digits, digits)

    def pairs(self, batch_size: int, generator: torch.Generator) -> list[tuple[str, str]]:
        lengths = torch.randint(
            self.min_length, self.max_length + 1, (batch_size,), generator=generator
        )
        digits = torch.randint(
            0, self.num_digits, (batch_size, self.max_length), generator=generator
        )
        out = []
        for n, row in zip(lengths.tolist(), digits.tolist()):
            text = "".join(str(d) for d in row[:n])
            out.append((text, text[::-1]))
        return out

    def __repr__(self) -> str:
        return f"ReverseTask(min_length={self.min_length}, max_length={self.max_length})"


def exact_match(predicted: Tensor, tgt: Tensor) -> float:
    """Fraction of rows whose prediction equals the target up to and including ``EOS``.

    Args:
        predicted: (B, T') decoded ids without BOS (``Seq2Seq.greedy`` / ``beam_search``).
        tgt: (B, T) targets as a task's batch gives them (starting with ``BOS``).
    """
    if predicted.dim() != 2 or tgt.dim() != 2 or predicted.shape[0] != tgt.shape[0]:
        raise ValueError(
            f"predicted (B, T') and tgt (B, T) must be 2-D with the same B; got "
            f"{tuple(predicted.shape)} and {tuple(tgt.shape)}"
        )
    hits = 0
    for p, t in zip(predicted.tolist(), tgt[:, 1:].tolist()):  # tgt without its BOS
        want = t[: t.index(EOS) + 1]
        hits += p[: len(want)] == want
    return hits / tgt.shape[0]
