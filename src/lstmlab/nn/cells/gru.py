"""The gated recurrent unit (Cho et al. 2014; Chung et al. 2014), in both of its published forms."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlab.nn.cells.base import Cell, Gates, State


class GRUCell(Cell):
    r"""One step of the GRU: ``torch.nn.GRUCell`` with a switch for where the reset gate acts.

    .. math::
        r &= \sigma(W_{ir} x + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z &= \sigma(W_{iz} x + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n &= \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h_{t-1} + b_{hn}))
            &&\text{reset\_after=True (torch, cuDNN)} \\
        n &= \tanh(W_{in} x + b_{in} + W_{hn} (r \odot h_{t-1}) + b_{hn})
            &&\text{reset\_after=False (Cho et al. 2014, v3)} \\
        h_t &= (1 - z) \odot n + z \odot h_{t-1}

    Parameters as torch names them: ``weight_ih`` (3H, input_size), ``weight_hh`` (3H, H),
    ``bias_ih``, ``bias_hh`` (3H,), rows in the order r, z, n -- the same in both forms.

    Example::

        >>> cell = GRUCell(8, 16, reset_after=False)
        >>> h, (h,), gates = cell.step(torch.randn(4, 8), cell.initial_state(4))
        >>> sorted(gates)
        ['candidate', 'reset', 'update']
    """

    allows_zero_size = True  # as torch.nn's cells: a hidden_size of 0 gives an empty state

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        reset_after: bool = True,
    ) -> None:
        super().__init__(input_size, hidden_size, state_sizes=(hidden_size,))
        self.bias, self.reset_after = bias, reset_after
        kw = dict(device=device, dtype=dtype)
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size, **kw))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size, **kw)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size, **kw)) if bias else None
        self.reset_parameters()

    def carry(self, gates: Gates) -> Tensor:
        return gates["update"]  # h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        (h,) = state  # (B, H)
        xr, xz, xn = F.linear(x, self.weight_ih, self.bias_ih).chunk(3, dim=-1)
        if self.reset_after:
            hr, hz, hn = F.linear(h, self.weight_hh, self.bias_hh).chunk(3, dim=-1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
        else:
            w_rz, w_n = self.weight_hh.split([2 * self.hidden_size, self.hidden_size])
            b_rz, b_n = (
                (None, None)
                if self.bias_hh is None
                else self.bias_hh.split([2 * self.hidden_size, self.hidden_size])
            )
            hr, hz = F.linear(h, w_rz, b_rz).chunk(2, dim=-1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            n = torch.tanh(xn + F.linear(r * h, w_n, b_n))
        h = (1 - z) * n + z * h
        return h, (h,), {"reset": r, "update": z, "candidate": n}

    def extra_repr(self) -> str:
        extra = "" if self.bias else ", bias=False"
        extra += "" if self.reset_after else ", reset_after=False"
        return f"{self.input_size}, {self.hidden_size}{extra}"
