r"""Encoder-decoder with attention (Sutskever et al. 2014; Bahdanau et al. 2015; Luong et al. 2015).

The encoder is any lstmlab layer by name (:data:`lstmlab.nn.registry.VARIANTS`), optionally
bidirectional; the decoder is a layer of any named cell stepped one token at a time through its
cells (as :meth:`lstmlab.models.LanguageModel.step` does). With attention the decoder follows
Luong, Pham & Manning (2015, sec. 3 and 3.3, "input feeding"):

.. math::
    h_t &= \mathrm{Decoder}([E y_{t-1};\ \tilde h_{t-1}],\ h_{t-1})  &&\text{(input feeding)} \\
    c_t, \alpha_t &= \mathrm{Attention}(h_t,\ \{\bar h_j\})           &&\text{(eq. 7--8)} \\
    \tilde h_t &= \tanh(W_c [c_t; h_t])                              &&\text{(eq. 5)} \\
    p(y_t \mid y_{<t}, x) &= \mathrm{softmax}(W_s \tilde h_t + b_s)  &&\text{(eq. 6)}

with :math:`\tilde h_0 = 0` and :math:`\bar h_j` the encoder's outputs (both directions
concatenated). Any score plugs in:
:class:`~lstmlab.models.attention.AdditiveAttention` (Bahdanau's, here queried with the current
:math:`h_t` as Luong does) or
:class:`~lstmlab.models.attention.MultiplicativeAttention`. Without attention the decoder reads
:math:`E y_{t-1}` alone and :math:`p = \mathrm{softmax}(W_s h_t + b_s)` (Sutskever et al. 2014).

The bridge: the decoder's initial hidden state comes from the encoder's final hidden state,
layer by layer, whatever the two cells are (Bahdanau et al. 2015, A.2.2: :math:`s_0 = \tanh(W
\overleftarrow{h}_1)`): for layer l, :math:`h^l_0 = \tanh(W_b [\overrightarrow{h}^l_n;
\overleftarrow{h}^l_1] + b_b)`, one ``W_b`` shared by all layers; every other part of the
decoder's state (an LSTM's cell ``c``, a Clockwork RNN's clock, ...) starts at zero, as a fresh
cell's does. So a GRU encoder can feed an LSTM decoder, and a bidirectional encoder a
unidirectional decoder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlab.models._common import _check_tokens
from lstmlab.models.attention import AdditiveAttention
from lstmlab.nn._checks import check_lengths, check_positive_int
from lstmlab.nn.registry import make_layer
from lstmlab.nn.stack import Stack

State = tuple[Tensor, ...]  # the decoder's state parts, each (num_layers, B, size)


class _Attention(Protocol):
    """What the decoder calls on the module that ``attention`` builds."""

    def project_keys(self, keys: Tensor) -> Tensor: ...

    def __call__(
        self, query: Tensor, keys: Tensor, mask: Tensor | None = None, *, projected: Tensor | None
    ) -> tuple[Tensor, Tensor]: ...


class Memory(NamedTuple):
    """What the decoder reads at every step: the encoder's outputs and their mask."""

    keys: Tensor  # (B, S, K) encoder outputs, zeros past each length
    mask: Tensor  # (B, S) bool, True at valid source positions
    projected: Tensor | None  # attention.project_keys(keys), computed once

    def take(self, rows: Tensor) -> Memory:
        projected = None if self.projected is None else self.projected[rows]
        return Memory(self.keys[rows], self.mask[rows], projected)


class Seq2Seq(nn.Module):
    """Encoder-decoder over token ids; see the module docstring for the equations.

    Args:
        src_vocab, tgt_vocab: sizes of the source and target vocabularies.
        cell: the decoder's cell, a name from :data:`lstmlab.nn.registry.VARIANTS` (and the
            encoder's, unless ``encoder_cell`` is given).
        embed_size: width of both embeddings.
        hidden_size: units of every layer.
        num_layers: layers of the encoder and of the decoder.
        attention: a class (or any callable) ``(query_size, key_size) -> module`` such as
            :class:`~lstmlab.models.attention.AdditiveAttention`, :class:`~lstmlab.models.attention.
            MultiplicativeAttention`, ``partial(MultiplicativeAttention, general=False)``; ``None``
            for no attention.
        encoder_cell: the encoder's cell name, if it differs from ``cell``.
        bidirectional: a bidirectional encoder.
        pad_id, bos_id, eos_id: the special target ids (PAD is also the source padding).

    Shapes: ``forward(src (B, S), src_lengths (B,), tgt_in (B, T)) -> (logits (B, T, V),
    weights (B, T, S) or None)``; ``greedy`` and ``beam_search`` return tokens ``(B, T')``
    without BOS, ending at EOS then PAD, and their attention weights ``(B, T', S)``.

    Example::

        >>> model = Seq2Seq(60, 14, "lstm", embed_size=32, hidden_size=64,
        ...                 encoder_cell="gru", bidirectional=True)
        >>> src, lengths = torch.randint(3, 60, (4, 12)), torch.tensor([12, 9, 5, 12])
        >>> logits, weights = model(src, lengths, torch.randint(3, 14, (4, 7)))
        >>> logits.shape, weights.shape        # (4, 7, 14), (4, 7, 12)
        >>> tokens, weights = model.greedy(src, lengths, max_len=11)
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        cell: str = "lstm",
        embed_size: int = 32,
        hidden_size: int = 64,
        num_layers: int = 1,
        attention: Callable[[int, int], nn.Module] | None = AdditiveAttention,
        *,
        encoder_cell: str | None = None,
        bidirectional: bool = False,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
    ) -> None:
        super().__init__()
        self.src_vocab = check_positive_int("src_vocab", src_vocab)
        self.tgt_vocab = check_positive_int("tgt_vocab", tgt_vocab)
        for name, i in (("pad_id", pad_id), ("bos_id", bos_id), ("eos_id", eos_id)):
            if not isinstance(i, int) or not 0 <= i < min(src_vocab, tgt_vocab):
                raise ValueError(
                    f"{name} must be an id in [0, {min(src_vocab, tgt_vocab)}); got {i!r}"
                )
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.src_embedding = nn.Embedding(src_vocab, embed_size, padding_idx=pad_id)
        self.tgt_embedding = nn.Embedding(tgt_vocab, embed_size)
        self.encoder = make_layer(
            encoder_cell or cell,
            embed_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
        )
        key_size = self.encoder.num_directions * self.encoder.output_size
        feed = hidden_size if attention is not None else 0  # input feeding: h~_{t-1}
        decoder = make_layer(
            cell, embed_size + feed, hidden_size, num_layers=num_layers, batch_first=True
        )
        if not isinstance(decoder, Stack):
            raise ValueError(
                f"the decoder steps one token at a time through the cells of a "
                f"lstmlab.Stack; cell {cell!r} builds a {type(decoder).__name__}"
            )
        self.decoder = decoder
        self.state_sizes = self.decoder.cells[0].state_sizes
        self.bridge = nn.Linear(key_size, self.state_sizes[0])  # -> the hidden state h_0
        self.attention: _Attention | None = None
        self.combine: nn.Linear | None = None
        if attention is not None:
            module = attention(self.decoder.output_size, key_size)
            if not isinstance(module, nn.Module):
                raise TypeError(
                    f"attention must build an nn.Module from (query_size, key_size); "
                    f"got {type(module).__name__}"
                )
            self.attention = cast(_Attention, module)
            # W_c of Luong eq. 5, no bias as in the paper: [c_t; h_t] -> h~_t
            self.combine = nn.Linear(key_size + self.decoder.output_size, hidden_size, bias=False)
        self.head = nn.Linear(
            hidden_size if attention is not None else self.decoder.output_size, tgt_vocab
        )

    def encode(self, src: Tensor, src_lengths: Tensor | Sequence[int]) -> tuple[Memory, State]:
        """Run the encoder: the decoder's memory and its initial state (through the bridge)."""
        src = _check_tokens(src, self.src_vocab, rank=2)
        lengths = check_lengths(src_lengths, src.shape[0], src.shape[1], src.device)
        keys, h_n = self.encoder(self.src_embedding(src), lengths=lengths)  # (B, S, D * O)
        h_n = h_n if isinstance(h_n, Tensor) else h_n[0]  # (L * D, B, O)
        L, D = self.encoder.num_layers, self.encoder.num_directions
        last = h_n.view(L, D, *h_n.shape[1:]).permute(0, 2, 1, 3).flatten(2)  # (L, B, D * O)
        h_0 = torch.tanh(self.bridge(last))  # (L, B, size)
        state = (h_0, *(h_0.new_zeros(*h_0.shape[:2], n) for n in self.state_sizes[1:]))
        mask = torch.arange(src.shape[1], device=src.device) < lengths.unsqueeze(1)  # (B, S)
        projected = None if self.attention is None else self.attention.project_keys(keys)
        return Memory(keys, mask, projected), state

    def step(
        self, token: Tensor, state: State, feed: Tensor | None, memory: Memory
    ) -> tuple[Tensor, State, Tensor | None, Tensor | None]:
        """One target token: ``token`` (B,), the state parts (L, B, size), h~_{t-1} (B, H) ->
        logits (B, V), the new state, h~_t (B, H) and the attention weights (B, S)."""
        x = self.tgt_embedding(token)  # (B, E)
        if self.attention is not None:
            if feed is None:
                raise ValueError("with attention, step needs feed: h~_{t-1} (B, H), zeros at t = 1")
            x = torch.cat([x, feed], dim=-1)  # input feeding (Luong sec. 3.3): (B, E + H)
        finals = []
        for k, cell in enumerate(self.decoder.cells):
            x, layer_state, _ = cell.step(x, tuple(p[k] for p in state))  # x: (B, O)
            finals.append(layer_state)
        state = tuple(torch.stack(p) for p in zip(*finals))  # each (L, B, size)
        if self.attention is None or self.combine is None:
            return self.head(x), state, None, None
        context, weights = self.attention(x, memory.keys, memory.mask, projected=memory.projected)
        feed = torch.tanh(self.combine(torch.cat([context, x], dim=-1)))  # eq. 5: (B, H)
        return self.head(feed), state, feed, weights

    def forward(
        self, src: Tensor, src_lengths: Tensor | Sequence[int], tgt_in: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: logits (B, T, V) for ``tgt_in`` (B, T) (starting with BOS), and the
        attention weights (B, T, S) (``None`` without attention)."""
        memory, state = self.encode(src, src_lengths)
        tgt_in = _check_tokens(tgt_in, self.tgt_vocab, rank=2)
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(
                f"tgt_in must have one row per source, shape ({src.shape[0]}, T); "
                f"got {tuple(tgt_in.shape)}"
            )
        feed = self._no_feed(memory)
        logits: list[Tensor] = []
        weights: list[Tensor] = []  # stays empty without attention
        for t in range(tgt_in.shape[1]):
            out, state, feed, w = self.step(tgt_in[:, t], state, feed, memory)
            logits.append(out)
            if w is not None:
                weights.append(w)
        return torch.stack(logits, 1), None if self.attention is None else torch.stack(weights, 1)

    def sequence_log_prob(
        self, src: Tensor, src_lengths: Tensor | Sequence[int], tokens: Tensor
    ) -> Tensor:
        """log p(tokens | src) (B,) by teacher forcing; ``tokens`` (B, T') as ``greedy`` returns
        them (no BOS); tokens after the first EOS are not counted."""
        tokens = _check_tokens(tokens, self.tgt_vocab, rank=2)
        bos = torch.full_like(tokens[:, :1], self.bos_id)
        logits, _ = self(src, src_lengths, torch.cat([bos, tokens[:, :-1]], dim=1))
        logp = F.log_softmax(logits, -1).gather(2, tokens.unsqueeze(2)).squeeze(2)  # (B, T')
        ended_before = (tokens == self.eos_id).long().cumsum(1) - (tokens == self.eos_id).long()
        return logp.masked_fill(ended_before > 0, 0.0).sum(1)

    @torch.no_grad()
    def greedy(
        self, src: Tensor, src_lengths: Tensor | Sequence[int], max_len: int
    ) -> tuple[Tensor, Tensor | None]:
        """The most likely token at every step, until EOS or ``max_len`` tokens: tokens (B, T')
        and attention weights (B, T', S) (rows after EOS are PAD and zeros)."""
        check_positive_int("max_len", max_len)
        memory, state = self.encode(src, src_lengths)
        B = src.shape[0]
        token = torch.full((B,), self.bos_id, dtype=torch.long, device=src.device)
        feed, done = self._no_feed(memory), torch.zeros(B, dtype=torch.bool, device=src.device)
        tokens: list[Tensor] = []
        weights: list[Tensor] = []  # stays empty without attention
        for _ in range(max_len):
            logits, state, feed, w = self.step(token, state, feed, memory)
            token = logits.argmax(-1).masked_fill(done, self.pad_id)
            tokens.append(token)
            if w is not None:
                weights.append(w.masked_fill(done.unsqueeze(1), 0.0))
            done = done | (token == self.eos_id)
            if bool(done.all()):
                break
        return torch.stack(tokens, 1), None if w is None else torch.stack(weights, 1)

    @torch.no_grad()
    def beam_search(
        self, src: Tensor, src_lengths: Tensor | Sequence[int], beam_width: int, max_len: int
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        """Beam search (Sutskever et al. 2014; Graves 2012): keep the ``beam_width`` most likely
        prefixes per source, by total log-probability (no length normalisation), until every
        hypothesis has ended in EOS or ``max_len`` tokens. Width 1 is greedy decoding.

        Returns the best hypothesis per source: tokens (B, T'), attention weights (B, T', S)
        (``None`` without attention) and its log-probability (B,), as ``greedy`` lays them out.
        """
        K = check_positive_int("beam_width", beam_width)
        check_positive_int("max_len", max_len)
        memory, state = self.encode(src, src_lengths)
        B, V, device = src.shape[0], self.tgt_vocab, src.device
        parent = torch.arange(B, device=device).repeat_interleave(K)  # (B*K,): source row
        memory, state = memory.take(parent), tuple(p[:, parent] for p in state)
        scores = torch.full((B, K), float("-inf"), dtype=memory.keys.dtype, device=device)
        scores[:, 0] = 0.0  # one live hypothesis to start from: just BOS
        token = torch.full((B * K,), self.bos_id, dtype=torch.long, device=device)
        feed, done = self._no_feed(memory), torch.zeros(B * K, dtype=torch.bool, device=device)
        # An ended hypothesis continues with PAD at no cost, so it keeps its score in the race.
        ended = torch.full((V,), float("-inf"), dtype=scores.dtype, device=device)
        ended[self.pad_id] = 0.0
        tokens = torch.empty(B * K, 0, dtype=torch.long, device=device)
        weights = memory.keys.new_zeros(B * K, 0, memory.keys.shape[1])
        for _ in range(max_len):
            logits, state, feed, w = self.step(token, state, feed, memory)
            logp = torch.where(done.unsqueeze(1), ended, F.log_softmax(logits, -1))  # (B*K, V)
            scores, best = (scores.view(B * K, 1) + logp).view(B, K * V).topk(K, dim=1)
            rows = (torch.arange(B, device=device).unsqueeze(1) * K + best // V).view(-1)
            token = (best % V).view(-1)  # (B*K,)
            state, done = tuple(p[:, rows] for p in state), done[rows]
            feed = None if feed is None else feed[rows]
            tokens = torch.cat([tokens[rows], token.unsqueeze(1)], dim=1)
            if w is not None:
                w = w[rows].masked_fill(done.unsqueeze(1), 0.0)
                weights = torch.cat([weights[rows], w.unsqueeze(1)], dim=1)
            done = done | (token == self.eos_id)
            if bool(done.all()):
                break
        first = torch.arange(B, device=device) * K  # topk sorts: beam 0 is each row's best
        return tokens[first], None if self.attention is None else weights[first], scores[:, 0]

    def _no_feed(self, memory: Memory) -> Tensor | None:
        """h~_0 = 0 (B, H), or None without attention."""
        if self.combine is None:  # no attention
            return None
        return memory.keys.new_zeros(memory.keys.shape[0], self.combine.out_features)


__all__ = ["Seq2Seq", "Memory"]
