"""Grid LSTM (Kalchbrenner, Danihelka & Graves 2015, "Grid Long Short-Term Memory",
arXiv:1507.01526).

LSTM cells along depth as well as time: every layer hands the next one a memory vector too, so
the depth dimension gets the gated, additive path that the time dimension has. Three pieces:

- :class:`GridLSTMCell`, the paper's N-LSTM block: N hidden and N memory vectors in, N out;
- :class:`GridLSTMColumn`, one time step of the 2-D (time x depth) grid -- a column of blocks --
  as an lstmlab :class:`~lstmlab.Cell`, so :func:`lstmlab.nn.recurrent.run` runs it over time;
- :class:`GridLSTM`, the layer, with ``torch.nn.LSTM``'s calling convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlab.nn._checks import check_dropout, check_positive_int
from lstmlab.nn.cells.base import Cell, Gates, State

DIMENSIONS = ("time", "depth")  # the 2-D grid's dimensions, in the block's order


class GridLSTMCell(nn.Module):
    r"""The N-LSTM block (Kalchbrenner et al. 2015, §3): one LSTM per dimension, all reading every
    dimension's hidden vector.

    .. math::
        H &= [h_1; \dots; h_N] \\
        i_j, f_j, o_j &= \sigma(W^{i,f,o}_j H + b^{i,f,o}_j), \quad g_j = \tanh(W^g_j H + b^g_j) \\
        m'_j &= f_j \odot m_j + i_j \odot g_j \\
        h'_j &= o_j \odot \tanh(m'_j) \qquad j = 1, \dots, N

    The paper prints its LSTM transform with ``h' = tanh(o ⊙ m')``; this block uses the usual
    ``o ⊙ tanh(m')``, as every other lstmlab cell does.

    Parameters: ``weight`` (N·4H, N·H) -- row block j holds dimension j's gates in the order
    i, f, g, o, column block k reads h_k -- and ``bias`` (N·4H,): all N LSTMs in one matmul.

    Example::

        >>> block = GridLSTMCell(16, dims=2)
        >>> h, m = (torch.randn(4, 16), torch.randn(4, 16)), (torch.zeros(4, 16),) * 2
        >>> (h_time, h_depth), (m_time, m_depth), gates = block(h, m)    # each (4, 16)
    """

    def __init__(
        self, hidden_size: int, dims: int = 2, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__()
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.dims = check_positive_int("dims", dims)
        H, N = hidden_size, dims
        self.weight = nn.Parameter(torch.empty(N * 4 * H, N * H, device=device, dtype=dtype))
        self.bias = (
            nn.Parameter(torch.empty(N * 4 * H, device=device, dtype=dtype)) if bias else None
        )
        bound = H**-0.5  # torch's U(-1/sqrt(H), 1/sqrt(H))
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(
        self, h: Sequence[Tensor], m: Sequence[Tensor]
    ) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...], Gates]:
        """``h``, ``m``: N tensors (B, H) each -> ``(h', m', gates)``; each gate (B, N, H), its
        ``[:, j]`` dimension j's."""
        if len(h) != self.dims or len(m) != self.dims:
            raise ValueError(
                f"a {self.dims}-LSTM block takes {self.dims} hidden and {self.dims} "
                f"memory vectors; got {len(h)} and {len(m)}"
            )
        z = F.linear(torch.cat(tuple(h), dim=-1), self.weight, self.bias)  # H = [h_1; ...; h_N]
        if torch.compiler.is_exporting():  # the same maths, one dimension at a time: torch's
            return self._per_dimension(z, m)  # ONNX Scan decomposition fails on (B, N, H) views
        i, f, g, o = z.unflatten(-1, (self.dims, 4, -1)).unbind(-2)  # (B, N·4H) -> 4 (B, N, H)
        i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()  # all N LSTMs at once
        c = f * torch.stack(tuple(m), dim=1) + i * g  # (B, N, H)
        y = o * c.tanh()
        return y.unbind(1), c.unbind(1), {"input": i, "forget": f, "candidate": g, "output": o}

    def _per_dimension(
        self, z: Tensor, m: Sequence[Tensor]
    ) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...], Gates]:
        """:meth:`forward` from the pre-activations z (B, N·4H), dimension by dimension."""
        blocks = z.chunk(4 * self.dims, dim=-1)  # dimension j's i, f, g, o: blocks 4j .. 4j+3
        c, y = [], []
        for j in range(self.dims):
            i, f, g, o = blocks[4 * j : 4 * j + 4]
            c.append(f.sigmoid() * m[j] + i.sigmoid() * g.tanh())  # (B, H)
            y.append(o.sigmoid() * c[j].tanh())
        return tuple(y), tuple(c), {}

    def extra_repr(self) -> str:
        return f"{self.hidden_size}, dims={self.dims}, bias={self.bias is not None}"


class GridLSTMColumn(Cell):
    r"""One time step of the 2-D Grid LSTM for sequences: a column of ``num_layers`` 2-LSTM blocks.

    Block l at step t reads the time pair (h^t, m^t) of block l at step t-1 and the depth pair
    (h^d, m^d) of block l-1 at step t; it sends its new time pair on to step t+1 and its depth pair
    up to block l+1 (Kalchbrenner et al. 2015, §3):

    .. math::
        h^d_{t,0} &= W_{in} x_t, \quad m^d_{t,0} = 0 \\
        (h^t_{t,l}, h^d_{t,l}), (m^t_{t,l}, m^d_{t,l}) &=
            \mathrm{Block}_l\big((h^t_{t-1,l}, h^d_{t,l-1}), (m^t_{t-1,l}, m^d_{t,l-1})\big) \\
        y_t &= h^d_{t,L}

    ``tied=True`` shares one block among all layers (the paper's tied N-LSTM, §3.5). Dropout
    (training only) acts on the depth hidden vector between blocks, never on memories.

    Parameters: ``weight_ih`` (H, input_size), the input projection (no bias: it would only shift
    the gate biases); ``blocks.{l}.weight`` (8H, 2H), ``blocks.{l}.bias`` (8H,) -- one block if
    tied.
    State: ``(h, m)``, each (B, L·H), layer l in columns [l·H, (l+1)·H). Gates: ``"input"``,
    ``"forget"``, ``"candidate"``, ``"output"``, each (B, L, 2, H): layer, then dimension
    (0 time, 1 depth).

    Example::

        >>> column = GridLSTMColumn(8, 16, num_layers=3, tied=True)
        >>> y, (h, m), gates = column.step(torch.randn(4, 8), column.initial_state(4))  # y (4, 16)
        >>> out, (h, m) = lstmlab.Recurrent(column)(torch.randn(10, 4, 8))           # (10, 4, 16)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        tied: bool = False,
        bias: bool = True,
        dropout: float = 0.0,
        device=None,
        dtype=None,
    ) -> None:
        check_positive_int("hidden_size", hidden_size)
        L, H = check_positive_int("num_layers", num_layers), hidden_size
        super().__init__(input_size, hidden_size, state_sizes=(L * H, L * H))
        self.num_layers, self.tied, self.dropout = L, tied, check_dropout(dropout)
        self.weight_ih = nn.Parameter(torch.empty(H, input_size, device=device, dtype=dtype))
        self.blocks = nn.ModuleList(
            GridLSTMCell(H, 2, bias, device, dtype) for _ in range(1 if tied else L)
        )
        self.reset_parameters()

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        h_time = state[0].chunk(self.num_layers, dim=-1)  # L tensors (B, H)
        m_time = state[1].chunk(self.num_layers, dim=-1)
        h_depth = F.linear(x, self.weight_ih)  # (B, I) -> (B, H): the input enters the grid
        m_depth = torch.zeros_like(h_depth)  # along depth, with an empty memory
        new_h: list[Tensor] = []
        new_m: list[Tensor] = []
        per_layer: list[Gates] = []
        for l in range(self.num_layers):
            if l > 0 and self.dropout > 0 and self.training:
                h_depth = F.dropout(h_depth, self.dropout, training=True)
            block = self.blocks[0 if self.tied else l]
            (h_t, h_depth), (m_t, m_depth), g = block((h_time[l], h_depth), (m_time[l], m_depth))
            new_h.append(h_t)
            new_m.append(m_t)
            per_layer.append(g)
        gates = {name: torch.stack([g[name] for g in per_layer], dim=1) for name in per_layer[0]}
        return h_depth, (torch.cat(new_h, dim=-1), torch.cat(new_m, dim=-1)), gates  # y (B, H)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"tied={self.tied}, dropout={self.dropout}"
        )
