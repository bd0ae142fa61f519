"""The language model: embedding -> recurrent layers -> linear head, with a one-token step."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlab.models._common import (
    StateLike,
    _cell_options,
    _check_starts,
    _check_tokens,
    _parts,
    _torch_form,
    detach_state,
)
from lstmlab.nn._checks import check_positive_int, check_state
from lstmlab.nn.registry import make_layer
from lstmlab.nn.regularizers import zone
from lstmlab.nn.stack import Stack


class LanguageModel(nn.Module):
    r"""Next-token prediction: embedding -> recurrent layers -> linear head (Zaremba et al. 2014).

    .. math::
        e_t = \mathrm{drop}(E[x_t]), \quad h_t = \mathrm{RNN}(e_t, h_{t-1}), \quad
        p(x_{t+1} \mid x_{\le t}) = \mathrm{softmax}(W\,\mathrm{drop}(h_t) + b)

    Dropout acts on the non-recurrent connections only (Zaremba et al. 2014): on the embeddings,
    between layers (the layer's ``dropout``) and before the head; the state passed from step to
    step is never dropped. The embedding and head start ~ U(-0.1, 0.1), the head bias at 0.

    Args:
        vocab_size: tokens ``V``.
        cell: a name from :data:`lstmlab.nn.registry.VARIANTS` (``"lstm"``, ``"gru"``,
            ``"fgr"``, ...).
        embed_size: embedding width ``E``.
        hidden_size: units per layer.
        num_layers: layers stacked.
        dropout: the probability of every dropout above.
        tie_weights: share one (V, E) matrix between embedding and head (Press & Wolf 2017; Inan
            et al. 2017). Needs the layer's output width to be ``E``: ``hidden_size=embed_size``,
            or for the LSTM cells ``proj_size=embed_size`` (Sak et al. 2014); otherwise
            ``ValueError`` -- no hidden projection is added behind your back.
        **cell_kwargs: the layer's own options, JSON values (they are part of :meth:`config`).
            A language model reads left to right, so ``bidirectional=True`` is a ``ValueError``.

    Shapes: ``forward(tokens (B, T), state, starts (B, T)) -> (logits (B, T, V), state)``;
    ``step(token (B,), state) -> (logits (B, V), state)``; the state in torch's form, each part
    ``(num_layers, B, size)``.

    Example::

        >>> model = LanguageModel(100, "lstm", embed_size=32, hidden_size=32, tie_weights=True)
        >>> logits, state = model(torch.randint(100, (4, 16)))       # (4, 16, 100), (h, c)
        >>> logits, state = model.step(torch.randint(100, (4,)), state)   # (4, 100): one more token
    """

    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        embed_size: int = 128,
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.0,
        tie_weights: bool = False,
        **cell_kwargs,
    ) -> None:
        super().__init__()
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        self.embed_size = check_positive_int("embed_size", embed_size)
        if cell_kwargs.get("bidirectional"):
            raise ValueError(
                "a language model predicts the next token, so it reads left to right: "
                "bidirectional=True would show it the tokens it must predict"
            )
        self.cell_name, self.hidden_size, self.num_layers = cell, hidden_size, num_layers
        self.dropout, self.tie_weights = dropout, tie_weights
        self.cell_kwargs = _cell_options(cell_kwargs)
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.drop = nn.Dropout(dropout)
        # Inter-layer dropout only where there is a second layer (Stack warns otherwise).
        self.rnn = make_layer(
            cell,
            embed_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            **self.cell_kwargs,
        )
        self.head = nn.Linear(self.rnn.output_size, vocab_size)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.uniform_(self.head.weight, -0.1, 0.1)
        nn.init.zeros_(self.head.bias)
        if tie_weights:
            if self.rnn.output_size != embed_size:
                raise ValueError(
                    f"tie_weights=True shares the (vocab, embed_size) matrix with the head, so the "
                    f"layer's output size must equal embed_size={embed_size}; got output size "
                    f"{self.rnn.output_size} (set hidden_size={embed_size}, or proj_size="
                    f"{embed_size} for an LSTM cell)"
                )
            self.head.weight = self.embedding.weight  # one (V, E) tensor

    def forward(
        self, tokens: Tensor, state: StateLike | None = None, starts: Tensor | None = None
    ) -> tuple[Tensor, StateLike]:
        """Logits of the next token at every step, and the state after the last.

        Args:
            tokens: (B, T) token ids.
            state: the state in torch's form (see :meth:`init_state`), ``None`` for zeros.
            starts: (B, T) bool, ``starts[b, t]`` where a document begins at ``tokens[b, t]``
                (:class:`lstmlab.data.text.TokenStream` yields it): row b's state is reset to
                zeros before step t, so no document sees the one before it. The chunk is cut at
                every column where some row starts a document and each piece runs through the
                layer in one call, so the cost is one layer call per such column (plus one).

        Returns:
            logits (B, T, V) and the final state, in the form of ``state``.
        """
        x = self.drop(self.embedding(_check_tokens(tokens, self.vocab_size, rank=2)))  # (B, T, E)
        if starts is None:
            out, state = self.rnn(x, state)  # (B, T, O)
        else:
            out, state = self._run_documents(x, state, _check_starts(starts, tokens))
        return self.head(self.drop(out)), state

    def _run_documents(
        self, x: Tensor, state: StateLike | None, starts: Tensor
    ) -> tuple[Tensor, StateLike]:
        """The layer over x (B, T, E), piece by piece, zeroing rows' state where documents start."""
        parts = _parts(self.init_state(x.shape[0]) if state is None else state)  # (L, B, size)
        steps = x.shape[1]
        cuts = sorted({0, steps, *starts.any(0).nonzero().flatten().tolist()})
        outputs = []
        for begin, end in zip(cuts, cuts[1:]):
            fresh = starts[:, begin].view(1, -1, 1)  # (1, B, 1): rows starting a document
            parts = tuple(p.masked_fill(fresh, 0.0) for p in parts)
            out, h_n = self.rnn(x[:, begin:end], _torch_form(parts))  # (B, end - begin, O)
            outputs.append(out)
            parts = _parts(h_n)
        return torch.cat(outputs, dim=1), _torch_form(parts)

    def step(self, token: Tensor, state: StateLike | None = None) -> tuple[Tensor, StateLike]:
        """One token through the cells, layer by layer, without re-running the sequence.

        The same computation as :meth:`forward` on one more step (tested to agree): each layer's
        cell takes its slice ``state_part[k]`` of the layer's (L, B, size) state parts through
        :meth:`~lstmlab.Cell.step`, and the new slices are stacked back into torch's form.

        Args:
            token: (B,) token ids.
            state: as :meth:`forward` returns it, or ``None`` for zeros.

        Returns:
            logits (B, V) and the new state.
        """
        x = self.drop(self.embedding(_check_tokens(token, self.vocab_size, rank=1)))  # (B, E)
        if not isinstance(self.rnn, Stack):  # no per-layer cells (GridLSTM: depth carries memory)
            out, state = self.rnn(x.unsqueeze(1), state)  # one step of the layer, (B, 1, O)
            return self.head(self.drop(out[:, 0])), state
        cells = self.rnn.cells
        if state is None:
            parts = _parts(self.init_state(x.shape[0]))
        else:
            parts = check_state(
                _parts(state),
                cells[0].state_sizes,
                x.shape[0],
                True,
                x,
                name="state",
                lead=(self.num_layers,),
            )
        finals = []
        for k, cell in enumerate(cells):
            if k > 0 and self.training and self.rnn.dropout > 0:  # the layer's inter-layer dropout
                x = F.dropout(x, self.rnn.dropout, training=True)
            old = tuple(p[k] for p in parts)
            x, layer_state, _ = cell.step(x, old)  # x: (B, O)
            if self.rnn.zoneout:  # as the layer computes it in evaluation: E[zoneout] of h, c
                zoned = tuple(zone(n, o, self.rnn.zoneout) for n, o in zip(layer_state[:2], old))
                layer_state = (*zoned, *layer_state[2:])
                x = layer_state[0]
            finals.append(layer_state)
        parts = tuple(torch.stack(p) for p in zip(*finals))  # each (L, B, size)
        return self.head(self.drop(x)), _torch_form(parts)

    def init_state(self, batch_size: int) -> StateLike:
        """Zeros in torch's form: a tensor (GRU, RNN) or a tuple (LSTM), each (L, B, size)."""
        check_positive_int("batch_size", batch_size)
        ref = self.embedding.weight
        return _torch_form(
            tuple(
                torch.zeros(self.num_layers, batch_size, size, dtype=ref.dtype, device=ref.device)
                for size in (
                    self.rnn.cells[0].state_sizes
                    if isinstance(self.rnn, Stack)
                    else self.rnn.state_sizes
                )
            )
        )

    def config(self) -> dict:
        """The constructor arguments as JSON, plus ``"kind": "language"``.

        :func:`build_model` rebuilds the model from it.
        """
        return {
            "kind": "language",
            "vocab_size": self.vocab_size,
            "cell": self.cell_name,
            "embed_size": self.embed_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "tie_weights": self.tie_weights,
            **self.cell_kwargs,
        }

    @staticmethod
    def detach_state(state: StateLike) -> StateLike:
        """See :func:`detach_state`."""
        return detach_state(state)
