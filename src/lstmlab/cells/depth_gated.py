"""The depth-gated LSTM (Yao, Cohn, Vylomova, Duh & Dyer 2015, "Depth-Gated LSTM",
arXiv:1508.03790).

A stack of peephole LSTMs in which a depth gate lets each layer's memory cell take in the cell of
the layer below at the same step: a gated linear path for the memory through depth, as the
forget gate is one through time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int
from ..stack import Stack
from .base import Gates, State
from .lstm import LSTMCell


class DepthGatedLSTMCell(LSTMCell):
    r"""One step of a depth-gated LSTM layer (Yao et al. 2015, eqs. 1-7).

    The peephole LSTM (:class:`LSTMCell` with ``peephole=True``) plus a depth gate d on the
    cell state c_t^{low} of the layer below at the same step:

    .. math::
        i &= \sigma(W_{ii} x_t + W_{hi} h_{t-1} + w_{ci} \odot c_{t-1} + b_i) \\
        f &= \sigma(W_{if} x_t + W_{hf} h_{t-1} + w_{cf} \odot c_{t-1} + b_f) \\
        g &= \tanh(W_{ig} x_t + W_{hg} h_{t-1} + b_g) \\
        d &= \sigma(W_{xd} x_t + w_{cd} \odot c_{t-1} + w_{ld} \odot c_t^{low} + b_d) \\
        c_t &= d \odot c_t^{low} + f \odot c_{t-1} + i \odot g \\
        o &= \sigma(W_{io} x_t + W_{ho} h_{t-1} + w_{co} \odot c_t + b_o) \\
        h_t &= o \odot \tanh(c_t)

    where x_t is the layer's input (the lower layer's h_t). The lower cell state arrives as the
    last ``hidden_size`` features of the step's input: ``step`` reads ``[x_t, c_t^{low}]``
    (B, input_size + hidden_size), so ``self.input_size`` is ``input_size + hidden_size``. With
    ``depth_gate=False`` (the bottom layer, which has no layer below) there is no d and no
    c_t^{low}: the cell is the peephole LSTM. With ``emit_cell=True`` the step's output is
    ``[h_t, c_t]`` (B, 2·hidden_size): what the depth-gated layer above reads.

    Parameters: those of the peephole LSTM, named as torch names them (``weight_ih`` (4H, I),
    ``weight_hh`` (4H, H), ``bias_ih``, ``bias_hh`` (4H,), ``weight_ci``, ``weight_cf``,
    ``weight_co`` (H,)), and the depth gate's ``weight_xd`` (H, I), ``weight_cd``, ``weight_ld``,
    ``bias_d`` (H,). Gates: the LSTM's and ``"depth"``.

    Example::

        >>> cell = DepthGatedLSTMCell(8, 16)                     # reads [x (8), c_low (16)]
        >>> h, (h, c), gates = cell.step(torch.randn(4, 24), cell.initial_state(4))
        >>> gates["depth"].shape
        torch.Size([4, 16])
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, *, depth_gate: bool = True, emit_cell: bool = False) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype, peephole=True)
        self.depth_gate, self.emit_cell = depth_gate, emit_cell
        H, kw = hidden_size, dict(device=device, dtype=dtype)
        if depth_gate:
            self.input_size = input_size + H             # the step reads [x_t, c_t^low]
        if emit_cell:
            self.output_size = 2 * H                     # the step writes [h_t, c_t]
        self.weight_xd = nn.Parameter(torch.empty(H, input_size, **kw)) if depth_gate else None
        self.weight_cd = nn.Parameter(torch.empty(H, **kw)) if depth_gate else None
        self.weight_ld = nn.Parameter(torch.empty(H, **kw)) if depth_gate else None
        self.bias_d = nn.Parameter(torch.empty(H, **kw)) if depth_gate and bias else None
        self.reset_parameters()

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        h, c = state                                                    # (B, H), (B, H)
        if self.depth_gate:                 # [x_t, c_t^low]: (B, I + H) -> (B, I), (B, H)
            x, c_low = x.split([x.shape[-1] - self.hidden_size, self.hidden_size], dim=-1)
        z = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        zi, zf, zg, zo = z.chunk(4, dim=-1)                             # each (B, H)
        i = torch.sigmoid(zi + self.weight_ci * c)
        f = torch.sigmoid(zf + self.weight_cf * c)
        g = torch.tanh(zg)
        gates = {"input": i, "forget": f, "candidate": g}
        if self.depth_gate:       # Yao et al. 2015: the lower cell flows in through d
            d = torch.sigmoid(F.linear(x, self.weight_xd, self.bias_d) + self.weight_cd * c
                              + self.weight_ld * c_low)
            c = d * c_low + f * c + i * g
            gates["depth"] = d
        else:
            c = f * c + i * g
        o = torch.sigmoid(zo + self.weight_co * c)
        h = o * torch.tanh(c)
        gates["output"] = o
        return self.output((h, c)), (h, c), gates

    def output(self, state: State) -> Tensor:
        """h, or with ``emit_cell`` [h, c] for the depth gate above: (B, H) or (B, 2H)."""
        h, c = state[:2]
        return torch.cat([h, c], dim=-1) if self.emit_cell else h

    def extra_repr(self) -> str:
        size = self.input_size - (self.hidden_size if self.depth_gate else 0)
        flags = "" if self.bias else ", bias=False"
        flags += "" if self.depth_gate else ", depth_gate=False"
        flags += ", emit_cell=True" if self.emit_cell else ""
        return f"{size}, {self.hidden_size}{flags}"


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

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, recurrent_dropout: float = 0.0,
                 zoneout: float = 0.0, device=None, dtype=None) -> None:
        check_positive_int("num_layers", num_layers)
        if bidirectional:
            raise ValueError("bidirectional=True is not supported by DepthGatedLSTM: the depth "
                             "gate links cells of one direction; use bidirectional=False")
        # Built in order, one per layer; Stack checks each one's input size against the layer
        # below's output (input_size, then [h, c] of 2 * hidden_size).
        cells = iter([DepthGatedLSTMCell(input_size if k == 0 else hidden_size, hidden_size,
                                         bias, device, dtype, depth_gate=k > 0,
                                         emit_cell=k < num_layers - 1)
                      for k in range(num_layers)])
        super().__init__(lambda n: next(cells), input_size, num_layers, batch_first=batch_first,
                         dropout=dropout, bidirectional=False,
                         recurrent_dropout=recurrent_dropout, zoneout=zoneout)
        self.output_size, self.bias = hidden_size, bias          # the top layer's h only
