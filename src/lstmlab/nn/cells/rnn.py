"""The vanilla (Elman) RNN of the post's first section: the network that forgets."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlab.nn.cells.base import Cell, Gates, State

_NONLINEARITIES = {"tanh": torch.tanh, "relu": torch.relu}


class ElmanCell(Cell):
    """A cell with an Elman layer's parameters, set by :func:`add_elman_parameters`: the base
    of :class:`RNNCell` and the clockwork RNN."""

    weight_ih: Tensor  # (H, I)
    weight_hh: Tensor  # (H, H)
    bias_ih: Tensor | None  # (H,)
    bias_hh: Tensor | None  # (H,)
    bias: bool
    nonlinearity: str
    phi: Callable[[Tensor], Tensor]


class RNNCell(ElmanCell):
    r"""One step of the Elman RNN (Elman 1990), as ``torch.nn.RNNCell``.

    .. math::
        h_t = \phi(W_{ih} x + b_{ih} + W_{hh} h_{t-1} + b_{hh}),
        \quad \phi \in \{\tanh, \mathrm{relu}\}

    It has no gates: ``step`` returns an empty gate dict.

    Example::

        >>> cell = RNNCell(8, 16, nonlinearity="relu")
        >>> h, (h,), gates = cell.step(torch.randn(4, 8), cell.initial_state(4))
    """

    allows_zero_size = True  # as torch.nn's cells: a hidden_size of 0 gives an empty state

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ) -> None:
        check_nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, state_sizes=(hidden_size,))
        add_elman_parameters(self, bias, nonlinearity, device, dtype)
        self.reset_parameters()

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        (h,) = state  # (B, H)
        h = self.phi(
            F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        )
        return h, (h,), {}

    def extra_repr(self) -> str:
        extra = "" if self.bias else ", bias=False"
        extra += "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}"
        return f"{self.input_size}, {self.hidden_size}{extra}"


def check_nonlinearity(nonlinearity: str) -> None:
    if nonlinearity not in _NONLINEARITIES:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def add_elman_parameters(
    cell: ElmanCell, bias: bool, nonlinearity: str, device=None, dtype=None
) -> None:
    """Give ``cell`` an Elman layer's parameters under ``torch.nn.RNNCell``'s names -- weight_ih
    (H, I), weight_hh (H, H), bias_ih and bias_hh (H,) or None -- uninitialised, and ``phi``, its
    nonlinearity (shared by :class:`RNNCell` and the clockwork RNN)."""
    H, kw = cell.hidden_size, dict(device=device, dtype=dtype)
    cell.bias, cell.nonlinearity, cell.phi = bias, nonlinearity, _NONLINEARITIES[nonlinearity]
    cell.weight_ih = nn.Parameter(torch.empty(H, cell.input_size, **kw))
    cell.weight_hh = nn.Parameter(torch.empty(H, H, **kw))
    cell.bias_ih = nn.Parameter(torch.empty(H, **kw)) if bias else None
    cell.bias_hh = nn.Parameter(torch.empty(H, **kw)) if bias else None
