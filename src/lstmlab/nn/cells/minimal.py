r"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?", arXiv 2410.01201).

The GRU and the LSTM with every hidden-to-hidden weight removed: the gates and the candidate
read only ``x_t``, so ``h_t = a_t ⊙ h_{t-1} + b_t`` is a linear recurrence in h whose
coefficients are known for all steps at once. :mod:`lstmlab.kernels.scan` computes it for the
whole sequence in parallel (a log-space scan); the cells below are its readable twins.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlab.nn.cells.base import Cell, Gates, State


def g(x: Tensor) -> Tensor:
    """The paper's positive activation (Feng et al. 2024, appendix B): ``x + 0.5`` for
    ``x >= 0``, ``σ(x)`` below; continuous, > 0 everywhere, linear for large x."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


class _MinimalCell(Cell):
    """What minGRU and minLSTM share: ``blocks`` pre-activations of H rows each, from x alone."""

    zoned_state_parts = 1  # the state is h alone
    blocks = 2  # rows of weight_ih, in units of hidden_size

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        positive: bool = False,
    ) -> None:
        super().__init__(input_size, hidden_size, state_sizes=(hidden_size,))
        self.bias, self.positive = bias, positive
        kw = dict(device=device, dtype=dtype)
        self.weight_ih = nn.Parameter(torch.empty(self.blocks * hidden_size, input_size, **kw))
        self.bias_ih = nn.Parameter(torch.empty(self.blocks * hidden_size, **kw)) if bias else None
        self.reset_parameters()

    def candidate(self, pre: Tensor) -> Tensor:
        """h̃ from its pre-activation: the identity (the paper's eq.), or ``g`` if ``positive``."""
        return g(pre) if self.positive else pre

    def extra_repr(self) -> str:
        extra = "" if self.bias else ", bias=False"
        extra += ", positive=True" if self.positive else ""
        return f"{self.input_size}, {self.hidden_size}{extra}"


class MinGRUCell(_MinimalCell):
    r"""One step of minGRU (Feng et al. 2024, section 3.1): a GRU whose gates see only x.

    .. math::
        z_t &= \sigma(W_{iz} x_t + b_{iz}) \\
        \tilde h_t &= W_{ih} x_t + b_{ih} &&\text{(} g(\cdot) \text{ if positive)} \\
        h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

    ``positive=True`` is the paper's log-space form (appendix B), whose candidate
    ``g(x) = x + 0.5`` (x >= 0) or ``σ(x)`` is always positive; the parallel scan here is exact
    for either sign, so the switch changes the model, not the speed.

    Parameters: ``weight_ih`` (2H, input_size), ``bias_ih`` (2H,), rows in the order z, h̃.
    Shapes: ``step(x (B, input_size), (h (B, H),))``; gates ``update`` (z) and ``candidate``.

    Example::

        >>> cell = MinGRUCell(8, 16)
        >>> h, (h,), gates = cell.step(torch.randn(4, 8), cell.initial_state(4))
        >>> sorted(gates)
        ['candidate', 'update']
    """

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        (h,) = state  # (B, H)
        k, pre = F.linear(x, self.weight_ih, self.bias_ih).chunk(2, dim=-1)  # (B, H) each
        z, h_tilde = torch.sigmoid(k), self.candidate(pre)
        h = (1 - z) * h + z * h_tilde
        return h, (h,), {"update": z, "candidate": h_tilde}

    def carry(self, gates: Gates) -> Tensor:
        return 1 - gates["update"]  # h_t = (1 - z) ⊙ h_{t-1} + z ⊙ h̃


class MinLSTMCell(_MinimalCell):
    r"""One step of minLSTM (Feng et al. 2024, section 3.2): an LSTM whose gates see only x,
    with its forget and input gates normalised to sum to one (so h needs no cell state).

    .. math::
        f_t &= \sigma(W_{if} x_t + b_{if}), \quad i_t = \sigma(W_{ii} x_t + b_{ii}) \\
        f'_t &= \frac{f_t}{f_t + i_t}, \quad i'_t = \frac{i_t}{f_t + i_t} \\
        \tilde h_t &= W_{ih} x_t + b_{ih} &&\text{(} g(\cdot) \text{ if positive)} \\
        h_t &= f'_t \odot h_{t-1} + i'_t \odot \tilde h_t

    Parameters: ``weight_ih`` (3H, input_size), ``bias_ih`` (3H,), rows in the order f, i, h̃.
    Shapes: ``step(x (B, input_size), (h (B, H),))``; gates ``forget`` (f'), ``input`` (i')
    and ``candidate``.

    Example::

        >>> cell = MinLSTMCell(8, 16)
        >>> h, (h,), gates = cell.step(torch.randn(4, 8), cell.initial_state(4))
        >>> sorted(gates)
        ['candidate', 'forget', 'input']
    """

    blocks = 3

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        (h,) = state  # (B, H)
        kf, ki, pre = F.linear(x, self.weight_ih, self.bias_ih).chunk(3, dim=-1)  # (B, H) each
        f, i, h_tilde = torch.sigmoid(kf), torch.sigmoid(ki), self.candidate(pre)
        f, i = f / (f + i), i / (f + i)  # f', i': they sum to one
        h = f * h + i * h_tilde
        return h, (h,), {"forget": f, "input": i, "candidate": h_tilde}

    def carry(self, gates: Gates) -> Tensor:
        return gates["forget"]  # h_t = f' ⊙ h_{t-1} + i' ⊙ h̃
