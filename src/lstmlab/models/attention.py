r"""Attention over an encoder's outputs: Bahdanau's additive score and Luong's multiplicative ones.

Both modules take one query per sequence -- the decoder's state -- and the encoder's outputs as
keys, and return the context vector and the weights that made it:

.. math::
    e_j = \mathrm{score}(s, h_j), \qquad
    \alpha_j = \frac{\exp e_j}{\sum_{k\,\mathrm{valid}} \exp e_k}, \qquad
    c = \sum_j \alpha_j h_j

Padded source positions (``mask[b, j] = False``) get weight exactly 0: their score is set to
``-inf`` before the softmax and their keys to 0, so whatever they hold never reaches the context,
the weights or the gradients.

Shapes: ``forward(query (B, Q), keys (B, S, K), mask (B, S) bool or None) -> (context (B, K),
weights (B, S))``. The key side of a score does not depend on the query, so a decoder computes it
once per source sentence with :meth:`project_keys` and passes it on every step (``projected=``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lstmlab.nn._checks import check_positive_int


class _Attention(nn.Module):
    """Shared plumbing: checks, masking, softmax, the weighted sum. Subclasses write the score."""

    query_size: int
    key_size: int

    def project_keys(self, keys: Tensor) -> Tensor:
        """The query-independent part of the score, computed once per source: (B, S, ·)."""
        raise NotImplementedError

    def score(self, query: Tensor, projected: Tensor) -> Tensor:
        """Scores e (B, S) of ``query`` (B, Q) against ``projected`` keys (B, S, ·)."""
        raise NotImplementedError

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        mask: Tensor | None = None,
        *,
        projected: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Context (B, K) and weights (B, S); see the module docstring.

        Args:
            query: (B, query_size), the decoder's state.
            keys: (B, S, key_size), the encoder's outputs (the values too).
            mask: (B, S) bool, True at valid source positions; ``None``: all valid.
            projected: ``project_keys(keys)``, to skip recomputing it at every decoder step.
        """
        mask = self._check(query, keys, mask)
        if mask is not None:  # padding may hold anything (even NaN): it never gets in
            keys = keys.masked_fill(~mask.unsqueeze(2), 0.0)
        if projected is None:
            projected = self.project_keys(keys)
        e = self.score(query, projected)  # (B, S)
        if mask is not None:
            e = e.masked_fill(~mask, float("-inf"))  # exp(-inf) = 0: exactly no weight
        weights = torch.softmax(e, dim=-1)  # (B, S)
        context = torch.bmm(weights.unsqueeze(1), keys).squeeze(1)  # (B, 1, S) @ (B, S, K)
        return context, weights

    def _check(self, query: object, keys: object, mask: object) -> Tensor | None:
        if not isinstance(query, Tensor) or not isinstance(keys, Tensor):
            raise TypeError(
                f"query and keys must be torch.Tensors, got "
                f"{type(query).__name__} and {type(keys).__name__}"
            )
        if query.dim() != 2 or query.shape[1] != self.query_size:
            raise ValueError(
                f"query must have shape (B, query_size={self.query_size}); got {tuple(query.shape)}"
            )
        if keys.dim() != 3 or keys.shape[2] != self.key_size or keys.shape[0] != query.shape[0]:
            raise ValueError(
                f"keys must have shape (B={query.shape[0]}, S, key_size="
                f"{self.key_size}); got {tuple(keys.shape)}"
            )
        if keys.shape[1] == 0:
            raise ValueError("keys must hold at least one source position; got S = 0")
        if mask is None:
            return None
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
            raise TypeError(
                f"mask must be a bool tensor (B, S), True at valid positions; got {got}"
            )
        if tuple(mask.shape) != tuple(keys.shape[:2]):
            raise ValueError(
                f"mask must have shape (B, S) = {tuple(keys.shape[:2])} like keys; "
                f"got {tuple(mask.shape)}"
            )
        if not bool(mask.any(dim=1).all()):
            raise ValueError(
                "mask must leave at least one valid position in every row; row(s) "
                f"{(~mask.any(dim=1)).nonzero().flatten().tolist()} are all padding"
            )
        return mask


class AdditiveAttention(_Attention):
    r"""Additive attention (Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly
    Learning to Align and Translate", eq. 6 and appendix A.1.2).

    .. math::
        e_j = v^\top \tanh(W s + U h_j)

    ``W`` (A, Q), ``U`` (A, K) and ``v`` (A,) with no bias, as in the paper; ``A`` is
    ``attention_size`` (default ``key_size``). ``U h_j`` is the key side (:meth:`project_keys`).

    Example::

        >>> attention = AdditiveAttention(query_size=8, key_size=6)
        >>> context, weights = attention(torch.randn(2, 8), torch.randn(2, 5, 6),
        ...                              torch.tensor([[True] * 5, [True] * 3 + [False] * 2]))
        >>> context.shape, weights.shape        # (2, 6), (2, 5); weights[1, 3:] == 0
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int | None = None) -> None:
        super().__init__()
        self.query_size = check_positive_int("query_size", query_size)
        self.key_size = check_positive_int("key_size", key_size)
        size = key_size if attention_size is None else attention_size
        self.attention_size = check_positive_int("attention_size", size)
        self.W = nn.Parameter(torch.empty(size, query_size))
        self.U = nn.Parameter(torch.empty(size, key_size))
        self.v = nn.Parameter(torch.empty(size))
        # torch's nn.Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), per matrix.
        for p, fan_in in ((self.W, query_size), (self.U, key_size), (self.v, size)):
            nn.init.uniform_(p, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))

    def project_keys(self, keys: Tensor) -> Tensor:
        return keys @ self.U.T  # U h_j: (B, S, A)

    def score(self, query: Tensor, projected: Tensor) -> Tensor:
        Ws = (query @ self.W.T).unsqueeze(1)  # (B, 1, A)
        return torch.tanh(Ws + projected) @ self.v  # (B, S)

    def extra_repr(self) -> str:
        return (
            f"query_size={self.query_size}, key_size={self.key_size}, "
            f"attention_size={self.attention_size}"
        )


class MultiplicativeAttention(_Attention):
    r"""Multiplicative attention (Luong, Pham & Manning 2015, "Effective Approaches to
    Attention-based Neural Machine Translation", eq. 8).

    .. math::
        e_j = s^\top W h_j \quad \text{("general")}, \qquad e_j = s^\top h_j \quad \text{("dot")}

    ``general=True`` learns ``W`` (Q, K); ``general=False`` is Luong's "dot" score, which has no
    parameters and needs ``query_size == key_size``. ``W h_j`` is the key side
    (:meth:`project_keys`).

    Example::

        >>> attention = MultiplicativeAttention(query_size=8, key_size=6)
        >>> context, weights = attention(torch.randn(2, 8), torch.randn(2, 5, 6))  # (2, 6), (2, 5)
    """

    def __init__(self, query_size: int, key_size: int, *, general: bool = True) -> None:
        super().__init__()
        self.query_size = check_positive_int("query_size", query_size)
        self.key_size = check_positive_int("key_size", key_size)
        self.general = general
        if general:
            self.W = nn.Parameter(torch.empty(query_size, key_size))
            nn.init.uniform_(self.W, -1 / math.sqrt(key_size), 1 / math.sqrt(key_size))
        elif query_size != key_size:
            raise ValueError(
                f"the dot score s^T h_j needs query_size == key_size; got "
                f"query_size={query_size}, key_size={key_size} (use general=True)"
            )

    def project_keys(self, keys: Tensor) -> Tensor:
        return keys @ self.W.T if self.general else keys  # W h_j: (B, S, Q)

    def score(self, query: Tensor, projected: Tensor) -> Tensor:
        return torch.bmm(projected, query.unsqueeze(2)).squeeze(2)  # (B, S, Q) @ (B, Q, 1)

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, general={self.general}"


__all__ = ["AdditiveAttention", "MultiplicativeAttention"]
