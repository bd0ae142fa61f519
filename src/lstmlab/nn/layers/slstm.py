"""The sLSTM of xLSTM (Beck et al. 2024) as a layer: :class:`SLSTM`, called like
``torch.nn.LSTM``. The cell is :class:`lstmlab.nn.cells.slstm.SLSTMCell`."""

from __future__ import annotations

from lstmlab.nn._checks import check_bool, check_layer_arguments
from lstmlab.nn.cells.slstm import SLSTMCell, check_heads
from lstmlab.nn.stack import Stack


class SLSTM(Stack):
    """Layers of :class:`~lstmlab.SLSTMCell`, called like ``torch.nn.LSTM``.

    Arguments as ``torch.nn.LSTM`` (no ``proj_size``) plus ``num_heads`` (the heads of the
    block-diagonal recurrence, dividing ``hidden_size``), ``exponential_forget`` (``f = exp(f̃)``
    instead of ``σ(f̃)``) and :class:`~lstmlab.Stack`'s ``recurrent_dropout`` and ``zoneout``
    (on h; both run the readable loop). Parameters ``weight_ih_l0`` (4H, I), ``weight_hh_l0``
    (num_heads, 4H/num_heads, H/num_heads), ``bias_ih_l0``, ``bias_hh_l0`` (4H,), ``_reverse``
    for the backward direction. The state has four parts, so ``forward`` returns
    ``(output, (h_n, c_n, n_n, m_n))``, each (num_layers * D, B, H); zeros start every unit
    afresh (see :class:`~lstmlab.SLSTMCell`).

    Example::

        >>> slstm = SLSTM(10, 32, num_layers=2, num_heads=4, batch_first=True)
        >>> out, (h_n, c_n, n_n, m_n) = slstm(torch.randn(3, 5, 10))   # (3, 5, 32), (2, 3, 32)
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
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ) -> None:
        check_layer_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout)
        check_heads(hidden_size, num_heads)  # one clear error before any layer is built
        check_bool("exponential_forget", exponential_forget)
        super().__init__(
            lambda n: SLSTMCell(
                n,
                hidden_size,
                bias,
                device,
                dtype,
                num_heads=num_heads,
                exponential_forget=exponential_forget,
            ),
            input_size,
            num_layers,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
        )
        self.bias, self.num_heads, self.exponential_forget = bias, num_heads, exponential_forget
        self.proj_size = 0
