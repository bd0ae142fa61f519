"""The sequence model: one prediction per sequence from a recurrent layer's summary."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lstmlab.models._common import _cell_options, _check_tokens
from lstmlab.nn._checks import check_positive_int
from lstmlab.nn.registry import make_layer


class SequenceModel(nn.Module):
    """One prediction per sequence: recurrent layer -> linear head on the sequence's summary.

    The summary is the output of the last step; bidirectional, it concatenates both directions'
    final summaries -- the forward direction's output at the last step and the backward
    direction's at the first step, where it has read the whole sequence. Built for the tasks of
    :mod:`lstmlab.data.tasks` (a task gives ``input_size``, ``vocab_size`` and ``output_size``).

    Args:
        cell: a name from :data:`lstmlab.nn.registry.VARIANTS`.
        input_size: features per step of float inputs (B, T, input_size); ``None`` (or equal to
            ``vocab_size``, the tasks' convention) for token inputs.
        output_size: features of the prediction (regression targets or class logits).
        hidden_size: units per layer.
        num_layers: layers stacked.
        vocab_size: if given, inputs are token ids (B, T), embedded into ``embed_size`` features.
        embed_size: embedding width for token inputs.
        bidirectional: add a backward direction to every layer.
        **cell_kwargs: the layer's own options (``dropout`` between layers, ``proj_size``, ...),
            JSON values.

    Example::

        >>> task = RecallTask(gap=5)
        >>> model = SequenceModel("gru", None, task.output_size, vocab_size=task.vocab_size)
        >>> x, y = task.batch(8, torch.Generator().manual_seed(0))
        >>> model(x).shape
        torch.Size([8, 12])
    """

    def __init__(
        self,
        cell: str,
        input_size: int | None,
        output_size: int,
        hidden_size: int = 128,
        num_layers: int = 1,
        vocab_size: int | None = None,
        embed_size: int = 32,
        bidirectional: bool = False,
        **cell_kwargs,
    ) -> None:
        super().__init__()
        if vocab_size is None:
            if input_size is None:
                raise ValueError(
                    "give input_size for float inputs (B, T, input_size) or "
                    "vocab_size for token ids (B, T); got neither"
                )
            self.embedding, features = None, input_size
        else:
            check_positive_int("vocab_size", vocab_size)
            if input_size not in (None, vocab_size):
                raise ValueError(
                    f"with token inputs input_size must be None or vocab_size="
                    f"{vocab_size}; got input_size={input_size}"
                )
            self.embedding, features = nn.Embedding(vocab_size, embed_size), embed_size
        check_positive_int("output_size", output_size)
        self.cell_name, self.input_size, self.output_size = cell, input_size, output_size
        self.hidden_size, self.num_layers, self.vocab_size = hidden_size, num_layers, vocab_size
        self.embed_size, self.bidirectional = embed_size, bidirectional
        self.cell_kwargs = _cell_options(cell_kwargs)
        self.rnn = make_layer(
            cell,
            features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            **self.cell_kwargs,
        )
        self.head = nn.Linear(self.rnn.num_directions * self.rnn.output_size, output_size)

    def forward(self, inputs: Tensor) -> Tensor:
        """``inputs`` (B, T) token ids or (B, T, input_size) floats -> (B, output_size)."""
        if self.embedding is not None:
            vocab = self.embedding.num_embeddings  # vocab_size
            inputs = self.embedding(_check_tokens(inputs, vocab, rank=2))  # (B, T, E)
        out, _ = self.rnn(inputs)  # (B, T, D * O)
        if not self.bidirectional:
            return self.head(out[:, -1])
        size = self.rnn.output_size  # [forward | backward] on the feature axis
        return self.head(torch.cat([out[:, -1, :size], out[:, 0, size:]], dim=-1))  # (B, 2O)

    def config(self) -> dict:
        """The constructor arguments as JSON, plus ``"kind": "sequence"``.

        :func:`build_model` rebuilds the model from it.
        """
        return {
            "kind": "sequence",
            "cell": self.cell_name,
            "input_size": self.input_size,
            "output_size": self.output_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "vocab_size": self.vocab_size,
            "embed_size": self.embed_size,
            "bidirectional": self.bidirectional,
            **self.cell_kwargs,
        }
