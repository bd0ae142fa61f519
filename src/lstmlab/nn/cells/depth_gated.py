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

from lstmlab.nn.cells.base import Gates, State
from lstmlab.nn.cells.lstm import LSTMCell


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

    allows_zero_size = False  # its depth gate and layer input are not defined for empty sizes

    # Always a peephole LSTM: its peepholes are never None.
    weight_ci: nn.Parameter
    weight_cf: nn.Parameter
    weight_co: nn.Parameter

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        depth_gate: bool = True,
        emit_cell: bool = False,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype, peephole=True)
        self.depth_gate, self.emit_cell = depth_gate, emit_cell
        H, kw = hidden_size, dict(device=device, dtype=dtype)
        if depth_gate:
            self.input_size = input_size + H  # the step reads [x_t, c_t^low]
        if emit_cell:
            self.output_size = 2 * H  # the step writes [h_t, c_t]
        self.weight_xd = nn.Parameter(torch.empty(H, input_size, **kw)) if depth_gate else None
        self.weight_cd = nn.Parameter(torch.empty(H, **kw)) if depth_gate else None
        self.weight_ld = nn.Parameter(torch.empty(H, **kw)) if depth_gate else None
        self.bias_d = nn.Parameter(torch.empty(H, **kw)) if depth_gate and bias else None
        self.reset_parameters()

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        h, c = state  # (B, H), (B, H)
        if self.depth_gate:  # [x_t, c_t^low]: (B, I + H) -> (B, I), (B, H)
            x, c_low = x.split([x.shape[-1] - self.hidden_size, self.hidden_size], dim=-1)
        z = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        zi, zf, zg, zo = z.chunk(4, dim=-1)  # each (B, H)
        i = torch.sigmoid(zi + self.weight_ci * c)
        f = torch.sigmoid(zf + self.weight_cf * c)
        g = torch.tanh(zg)
        gates = {"input": i, "forget": f, "candidate": g}
        if self.depth_gate:  # Yao et al. 2015: the lower cell flows in through d
            assert self.weight_xd is not None and self.weight_cd is not None
            assert self.weight_ld is not None  # set with depth_gate
            d = torch.sigmoid(
                F.linear(x, self.weight_xd, self.bias_d)
                + self.weight_cd * c
                + self.weight_ld * c_low
            )
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
