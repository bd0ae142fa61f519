"""The Clockwork RNN as a layer (Koutník et al. 2014): :class:`ClockworkRNN`, called like
``torch.nn.RNN``. The cell is :class:`lstmlab.nn.cells.clockwork.ClockworkRNNCell`."""

from __future__ import annotations

from collections.abc import Sequence

from lstmlab.nn.cells.clockwork import ClockworkRNNCell, check_periods, default_periods
from lstmlab.nn.stack import Stack


class ClockworkRNN(Stack):
    """Layers of :class:`ClockworkRNNCell`, called like ``torch.nn.RNN``.

    Arguments as ``torch.nn.RNN`` plus ``periods`` (shared by every layer and direction) and
    :class:`~lstmlab.Stack`'s ``recurrent_dropout`` and ``zoneout`` (on h; the clock is never
    held back).
    Parameters ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ...
    (``_reverse`` for the backward direction), shaped as torch's. The state is two parts, so
    ``forward`` returns ``(output, (h_n, t_n))``: ``t_n`` (num_layers * D, B, 1) is each layer's
    clock, to pass back in as ``hx`` for the next chunk. Each direction's clock starts at its own
    first step (the backward one at each sequence's last valid step).

    Example::

        >>> cw = ClockworkRNN(10, 32, num_layers=2, periods=(1, 2, 4, 8), batch_first=True)
        >>> out, (h_n, t_n) = cw(torch.randn(3, 5, 10))       # (3, 5, 32), (2, 3, 32), (2, 3, 1)
        >>> out2, state = cw(torch.randn(3, 5, 10), (h_n, t_n))   # continues at t = 5
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        periods: Sequence[int] | None = None,
        bias: bool = True,
        nonlinearity: str = "tanh",
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ) -> None:
        periods = (
            default_periods(hidden_size) if periods is None else check_periods(periods, hidden_size)
        )  # one clear error before any layer
        super().__init__(
            lambda n: ClockworkRNNCell(n, hidden_size, periods, bias, nonlinearity, device, dtype),
            input_size,
            num_layers,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
        )
        self.periods, self.bias, self.nonlinearity = periods, bias, nonlinearity
