"""The mLSTM as a layer (Beck et al. 2024, xLSTM): :class:`MLSTM`. The cell is
:class:`lstmlab.nn.cells.mlstm.MLSTMCell`; the layer runs it through the parallel form of
:mod:`lstmlab.kernels.mlstm`."""

from __future__ import annotations

from lstmlab.nn._checks import check_layer_arguments
from lstmlab.nn.cells.mlstm import MLSTMCell
from lstmlab.nn.stack import Stack


class MLSTM(Stack):
    """Layers of :class:`~lstmlab.nn.cells.mlstm.MLSTMCell`, with ``torch.nn.LSTM``'s arguments.

    Arguments as ``torch.nn.LSTM`` (no ``proj_size``), plus ``num_heads`` (which must divide
    ``hidden_size``) and ``exponential_forget``. The mLSTM has no recurrent weight and its state
    is a memory, not h, so it takes neither ``recurrent_dropout`` nor ``zoneout``. Parameters
    ``weight_ih_l0`` (4H + 2·heads, input_size), ``bias_ih_l0``, ... (``_reverse`` for the
    backward direction). Returns ``(output, (C_n, n_n, m_n))``: each layer's memory
    (num_layers * D, B, heads·d·d), normaliser (.., heads·d) and stabiliser (.., heads), to pass
    back in as ``hx``.

    Example::

        >>> mlstm = MLSTM(10, 32, num_layers=2, num_heads=4, batch_first=True)
        >>> out, (C, n, m) = mlstm(torch.randn(3, 5, 10))   # (3, 5, 32); C (2, 3, 256)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        num_heads: int = 1,
        exponential_forget: bool = False,
    ) -> None:
        check_layer_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout)
        MLSTMCell(1, hidden_size, num_heads=num_heads)  # one clear error before any layer

        def make_cell(n: int) -> MLSTMCell:
            return MLSTMCell(
                n,
                hidden_size,
                bias,
                device,
                dtype,
                num_heads=num_heads,
                exponential_forget=exponential_forget,
            )

        super().__init__(
            make_cell,
            input_size,
            num_layers,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
        )
        self.bias, self.num_heads = bias, num_heads
        self.exponential_forget = exponential_forget
