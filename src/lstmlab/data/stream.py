"""Streams for truncated backpropagation through time: :class:`TokenStream` lays token ids out
in parallel streams and hands them out as :class:`Chunk` batches, resumably."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from lstmlab.nn._checks import check_positive_int


class Chunk(NamedTuple):
    """One step of truncated BPTT: ``T = bptt`` (fewer in the last chunk)."""

    inputs: Tensor  # (B, T) token ids
    targets: Tensor  # (B, T) the token after each input: inputs shifted left by one
    starts: Tensor  # (B, T) bool, True where inputs[b, t] is the first token of a document


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
            if (
                not isinstance(doc, Tensor)
                or doc.is_floating_point()
                or doc.is_complex()
                or doc.dtype == torch.bool
            ):
                got = doc.dtype if isinstance(doc, Tensor) else type(doc).__name__
                raise TypeError(f"documents[{k}] must be an integer tensor of token ids, got {got}")
            if doc.dim() != 1:
                raise ValueError(f"documents[{k}] must be 1-D (N,), got shape {tuple(doc.shape)}")
        lengths = torch.tensor([len(d) for d in documents], dtype=torch.long)
        total = int(lengths.sum())
        self.steps = total // batch_size  # S, tokens per stream
        if self.steps < 2:
            raise ValueError(
                f"documents must hold at least 2 * batch_size = {2 * batch_size} "
                f"tokens (two per stream, to predict one); got {total}"
            )
        data = torch.cat([d.long() for d in documents])  # (N,)
        first = torch.zeros(total, dtype=torch.bool, device=data.device)  # (N,)
        offsets = lengths.cumsum(0) - lengths  # each doc's start
        first[offsets[lengths > 0].to(data.device)] = True  # empty docs: none
        used = self.steps * batch_size
        self._tokens = data[:used].view(batch_size, self.steps)  # (B, S)
        self._starts = first[:used].view(batch_size, self.steps)  # (B, S)
        self.position = 0

    def __len__(self) -> int:
        return math.ceil((self.steps - 1) / self.bptt)  # the last input is step S - 2

    def __getitem__(self, k: int) -> Chunk:
        if not isinstance(k, int) or not 0 <= k < len(self):
            raise IndexError(f"chunk index must be in [0, {len(self)}), got {k!r}")
        i, j = k * self.bptt, min((k + 1) * self.bptt, self.steps - 1)
        # clones: a trainer may write into its batch without corrupting the stream
        return Chunk(
            self._tokens[:, i:j].clone(),
            self._tokens[:, i + 1 : j + 1].clone(),
            self._starts[:, i:j].clone(),
        )

    def __iter__(self) -> Iterator[Chunk]:
        while self.position < len(self):
            chunk = self[self.position]
            self.position += 1
            yield chunk
        self.position = 0

    def state_dict(self) -> dict[str, int]:
        """Where the stream is, plus its layout (checked on load); plain JSON."""
        return {
            "position": self.position,
            "batch_size": self.batch_size,
            "bptt": self.bptt,
            "steps": self.steps,
        }

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Continue at ``state["position"]``; the layout must match this stream's."""
        mine = self.state_dict()
        for key in ("batch_size", "bptt", "steps"):
            if state.get(key) != mine[key]:
                raise ValueError(
                    f"state {key}={state.get(key)!r} does not match this stream's "
                    f"{key}={mine[key]}: it was saved from other data or settings"
                )
        position = state.get("position")
        if not isinstance(position, int) or not 0 <= position <= len(self):
            raise ValueError(
                f"state position must be an integer in [0, {len(self)}], got {position!r}"
            )
        self.position = position

    def __repr__(self) -> str:
        return (
            f"TokenStream(batch_size={self.batch_size}, bptt={self.bptt}, "
            f"steps={self.steps}, chunks={len(self)})"
        )


__all__ = ["Chunk", "TokenStream"]
