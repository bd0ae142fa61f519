"""minGRU and minLSTM as layers (Feng et al. 2024): :class:`MinGRU` and :class:`MinLSTM`,
called like ``torch.nn.GRU``. The cells are in :mod:`lstmlab.nn.cells.minimal`; the layers run
them through the parallel scan of :mod:`lstmlab.kernels.scan`."""

from __future__ import annotations

from lstmlab.nn._checks import check_layer_arguments
from lstmlab.nn.cells.minimal import MinGRUCell, MinLSTMCell
from lstmlab.nn.stack import Stack


class _Minimal(Stack):
    cell_class: type[MinGRUCell] | type[MinLSTMCell] = MinGRUCell

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
        positive: bool = False,
        zoneout: float = 0.0,
    ) -> None:
        check_layer_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout)
        cell = self.cell_class
        super().__init__(
            lambda n: cell(n, hidden_size, bias, device, dtype, positive=positive),
            input_size,
            num_layers,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            zoneout=zoneout,
        )
        self.bias, self.positive = bias, positive


class MinGRU(_Minimal):
    """Layers of :class:`~lstmlab.nn.cells.minimal.MinGRUCell`, called like ``torch.nn.GRU``.

    Arguments as ``torch.nn.GRU``, plus ``positive`` (the paper's ``g`` on the candidate) and
    ``zoneout`` (on h; :class:`~lstmlab.Stack`). There is no recurrent weight, so no
    ``recurrent_dropout``. Parameters ``weight_ih_l0`` (2H, input_size), ``bias_ih_l0`` (2H,),
    ... (``_reverse`` for the backward direction). Returns ``(output, h_n)``.

    Example::

        >>> gru = MinGRU(10, 20, num_layers=2, bidirectional=True)
        >>> output, h_n = gru(torch.randn(5, 3, 10))          # (5, 3, 40), (4, 3, 20)
    """

    cell_class = MinGRUCell


class MinLSTM(_Minimal):
    """Layers of :class:`~lstmlab.nn.cells.minimal.MinLSTMCell`, called like ``torch.nn.GRU``
    (the state is h alone: minLSTM has no cell state).

    Arguments and options as :class:`MinGRU`. Parameters ``weight_ih_l0`` (3H, input_size),
    ``bias_ih_l0`` (3H,), ... Returns ``(output, h_n)``.

    Example::

        >>> lstm = MinLSTM(10, 20, batch_first=True)
        >>> output, h_n = lstm(torch.randn(3, 5, 10))         # (3, 5, 20), (1, 3, 20)
    """

    cell_class = MinLSTMCell
