"""The depth-gated LSTM as a layer (Yao et al. 2015): :class:`DepthGatedLSTM`, called like
``torch.nn.LSTM``. The cell is :class:`lstmlab.nn.cells.depth_gated.DepthGatedLSTMCell`."""

from __future__ import annotations

from lstmlab.nn._checks import check_positive_int
from lstmlab.nn.cells.depth_gated import DepthGatedLSTMCell
from lstmlab.nn.stack import Stack


class DepthGatedLSTM(Stack):
    """A depth-gated LSTM stack (Yao et al. 2015), called like ``torch.nn.LSTM``.

    Layer k > 0 is a :class:`DepthGatedLSTMCell` whose depth gate reads the cell state of layer
    k - 1 at the same step; the layers below the top one emit ``[h_t, c_t]`` so that the stack's
    layer-by-layer loop hands both up. Layer 0 has no layer below and so no depth gate (it is a
    peephole LSTM; the same as a lower cell of zeros, without parameters that would never act).
    Inter-layer ``dropout`` acts on everything that flows up, h and c alike: both are
    non-recurrent connections (Zaremba et al. 2014). ``recurrent_dropout`` and ``zoneout`` as
    in :class:`lstmlab.Stack`; with zoneout the zoned c_t is what flows up to the depth gate.

    Returns ``(output, (h_n, c_n))`` as ``torch.nn.LSTM``; ``output`` is the top layer's h.
    Parameters as :class:`lstmlab.LSTM` with ``peephole=True`` (``weight_ih_l0``,
    ``weight_ci_l0``, ...) plus ``weight_xd_l{k}``, ``weight_cd_l{k}``, ``weight_ld_l{k}``,
    ``bias_d_l{k}`` for k >= 1. ``bidirectional=True`` raises ``ValueError`` (the paper defines
    no backward depth path).

    Example::

        >>> lstm = DepthGatedLSTM(10, 20, num_layers=3, batch_first=True)
        >>> output, (h_n, c_n) = lstm(torch.randn(4, 7, 10))    # (4, 7, 20), (3, 4, 20) each
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        device=None,
        dtype=None,
    ) -> None:
        check_positive_int("num_layers", num_layers)
        if bidirectional:
            raise ValueError(
                "bidirectional=True is not supported by DepthGatedLSTM: the depth "
                "gate links cells of one direction; use bidirectional=False"
            )
        # Built in order, one per layer; Stack checks each one's input size against the layer
        # below's output (input_size, then [h, c] of 2 * hidden_size).
        cells = iter(
            [
                DepthGatedLSTMCell(
                    input_size if k == 0 else hidden_size,
                    hidden_size,
                    bias,
                    device,
                    dtype,
                    depth_gate=k > 0,
                    emit_cell=k < num_layers - 1,
                )
                for k in range(num_layers)
            ]
        )
        super().__init__(
            lambda n: next(cells),
            input_size,
            num_layers,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=False,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
        )
        self.output_size, self.bias = hidden_size, bias  # the top layer's h only
