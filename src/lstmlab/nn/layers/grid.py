"""The 2-D Grid LSTM as a layer (Kalchbrenner et al. 2015): :class:`GridLSTM`, called like
``torch.nn.LSTM``. Its cell is one time column of blocks,
:class:`lstmlab.nn.cells.grid.GridLSTMColumn`, run over time by the readable loop or its fused
operation."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from lstmlab.nn import dispatch
from lstmlab.nn._checks import check_dropout, check_state, state_parts
from lstmlab.nn.cells.base import Gates
from lstmlab.nn.cells.grid import DIMENSIONS, GridLSTMColumn
from lstmlab.nn.recurrent import run, time_major


class GridLSTM(nn.Module):
    """The 2-D (time x depth) Grid LSTM as a layer, called like ``torch.nn.LSTM``.

    Args as ``torch.nn.LSTM`` (``input_size, hidden_size, num_layers, bias, batch_first,
    dropout``), plus ``tied`` (one block for every layer). ``bidirectional=True`` is a
    ``ValueError`` (not supported): with both directions feeding every layer, as in torch's
    bidirectional LSTM, the grid could no longer be computed one time column at a time.

    ``forward(input, hx=None, *, lengths=None, return_gates=False)``:
        input: (T, B, input_size) (batch-first: (B, T, input_size)), unbatched (T, input_size),
            or a ``PackedSequence``.
        hx: ``(h_0, c_0)``, each (num_layers, B, hidden_size): every layer's time-dimension hidden
            and memory vectors; ``None`` for zeros.
        lengths: (B,) valid steps per sequence, any order; padded steps output zeros.
        Returns ``(output, (h_n, c_n))``: output (T, B, hidden_size), the top block's depth
        hidden vector; h_n, c_n as hx. With ``return_gates``, a third item: one dict per layer of
        ``"time_input"``, ..., ``"depth_output"`` laid out like the output.

    Example::

        >>> grid = GridLSTM(10, 20, num_layers=3, tied=True, batch_first=True)
        >>> output, (h_n, c_n) = grid(torch.randn(4, 7, 10))    # (4, 7, 20), (3, 4, 20) each
    """

    num_directions = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        tied: bool = False,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if bidirectional:
            raise ValueError(
                "bidirectional=True is not supported by GridLSTM: its columns run "
                "forward in time (use bidirectional=False); got True"
            )
        if check_dropout(dropout) > 0 and num_layers == 1:
            warnings.warn(
                "dropout acts between layers, so with num_layers=1 it does nothing "
                f"(got dropout={dropout})",
                stacklevel=2,
            )
        self.cell = GridLSTMColumn(
            input_size,
            hidden_size,
            num_layers,
            tied=tied,
            bias=bias,
            dropout=dropout,
            device=device,
            dtype=dtype,
        )
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.output_size, self.tied, self.bias = hidden_size, tied, bias
        self.batch_first, self.dropout, self.bidirectional = batch_first, float(dropout), False
        self.state_sizes = (hidden_size, hidden_size)  # of h_n and c_n, per layer

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: tuple[Tensor, Tensor] | None = None,
        *,
        lengths: Tensor | Sequence[int] | None = None,
        return_gates: bool = False,
    ) -> tuple:
        x, layout = time_major(self, input, lengths, self.batch_first)  # (T, B, I)
        batch, batched = x.shape[1], layout.batched
        if hx is None:
            state = self.cell.initial_state(batch, dtype=x.dtype, device=x.device)
        else:
            parts = check_state(
                state_parts(hx, "hx"),
                self.state_sizes,
                batch,
                batched,
                x,
                name="hx",
                lead=(self.num_layers,),
            )
            # (L, B, H) -> (B, L·H): the column cell's state, layer l in columns [l·H, (l+1)·H)
            state = tuple(
                (p if batched else p.unsqueeze(1)).transpose(0, 1).flatten(1) for p in parts
            )
        op = None if return_gates else dispatch.sequence_op(self.cell, x)
        if op is not None:  # the fused column (lstmlab.kernels.grid)
            out, state = op(self.cell, x, state, layout.lengths, False)
            gates: Gates = {}
        else:
            out, state, gates = run(self.cell, x, state, layout.lengths, keep_gates=return_gates)
        h_n, c_n = (
            s.unflatten(-1, (self.num_layers, -1)).transpose(0, 1).contiguous() for s in state
        )  # (B, L·H) -> (L, B, H)
        if not batched:
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        if not return_gates:
            return layout(out), (h_n, c_n)
        per_layer = [
            {
                f"{dim}_{k}": layout(g[:, :, l, j])  # (T, B, L, 2, H) -> (T, B, H)
                for j, dim in enumerate(DIMENSIONS)
                for k, g in gates.items()
            }
            for l in range(self.num_layers)
        ]
        return layout(out), (h_n, c_n), per_layer

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"tied={self.tied}, bias={self.bias}, batch_first={self.batch_first}, "
            f"dropout={self.dropout}"
        )
