"""The sLSTM of xLSTM (Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory", section 2.2):
an LSTM with an exponential input gate, a normaliser state and head-wise memory mixing."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlab.nn._checks import check_bool, check_positive_int
from lstmlab.nn.cells.base import Cell, Gates, State


def check_heads(hidden_size: int, num_heads: object) -> int:
    """``num_heads`` as an int that splits ``hidden_size`` into equal heads."""
    check_positive_int("num_heads", num_heads)
    assert isinstance(num_heads, int)
    if hidden_size % num_heads:
        raise ValueError(
            f"hidden_size={hidden_size} must split into num_heads={num_heads} equal heads; "
            f"got a remainder of {hidden_size % num_heads}"
        )
    return num_heads


def stabilised_gates(log_i: Tensor, log_f: Tensor, m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The exponential gates on the scale of the stabiliser (Beck et al. 2024, eqs. 15-17):
    ``m_t = max(log f + m_{t-1}, log i)``, ``i' = exp(log i - m_t)``,
    ``f' = exp(log f + m_{t-1} - m_t)``; returns i', f' (both <= 1) and m_t."""
    m_new = torch.maximum(log_f + m, log_i)
    return torch.exp(log_i - m_new), torch.exp(log_f + m - m_new), m_new


class SLSTMCell(Cell):
    r"""One step of the sLSTM (Beck et al. 2024, section 2.2), in its stabilised form.

    .. math::
        \tilde\imath, \tilde f, \tilde z, \tilde o &= W x_t + R\, h_{t-1} + b \\
        \log i_t &= \tilde\imath, \qquad
        \log f_t = \log\sigma(\tilde f) \ \text{(or } \tilde f
            \text{ with exponential\_forget)} \\
        m_t &= \max(\log f_t + m_{t-1},\ \log i_t) \\
        i'_t &= \exp(\log i_t - m_t), \qquad f'_t = \exp(\log f_t + m_{t-1} - m_t) \\
        c_t &= f'_t\, c_{t-1} + i'_t \tanh(\tilde z), \qquad n_t = f'_t\, n_{t-1} + i'_t \\
        h_t &= \sigma(\tilde o) \odot c_t / n_t

    The stabiliser m cancels from ``c_t / n_t``: the outputs are those of ``i = exp(ĩ)`` and
    ``f`` unstabilised, without overflow. A unit whose normaliser is 0 (the zero state: nothing
    stored yet) starts its stabiliser afresh, ``m_t = log i_t`` -- as if ``m_0 = -inf`` --, as the
    official ``xlstm`` kernels do; from then on ``n_t >= 1``, so ``c_t / n_t`` stays finite.

    Memory mixing is head-wise (the paper's block-diagonal recurrent matrix): the H units form
    ``num_heads`` heads of d = H / num_heads units, and each head's gates see only its own
    units of h_{t-1}.

    Parameters: ``weight_ih`` (4H, input_size) and ``bias_ih``, ``bias_hh`` (4H,), rows in the
    gate order i, f, z, o as torch's LSTM (i, f, g, o); ``weight_hh`` (num_heads, 4d, d), the
    diagonal blocks of R: ``weight_hh[k, g*d:(g+1)*d]`` maps head k's units of h_{t-1} to gate
    g's pre-activations of head k's units (rows ``g*H + k*d ...`` of ``weight_ih``). This is the
    layout of the ``xlstm`` package's vanilla backend. ``num_heads=1`` is a full recurrent
    matrix. The state is ``(h, c, n, m)``, each (B, H).

    Example::

        >>> cell = SLSTMCell(8, 16, num_heads=4)
        >>> h, (h, c, n, m), gates = cell.step(torch.randn(2, 8), cell.initial_state(2))
        >>> sorted(gates)
        ['candidate', 'forget', 'input', 'output']
    """

    zoned_state_parts = 1  # c and n share the scale exp(m): zoneout mixes h alone
    # For lstmlab.viz's diagrams: the state parts' names, the names of what ``preactivations``
    # returns, and the methods step calls that are bookkeeping (numerical safety, not the
    # idea), each drawn as one labelled operation.
    state_names = ("h", "c", "n", "m")
    named_outputs = {"preactivations": ("i", "f", "z", "o")}
    drawn_as_one = {"stabilised_gates": "stabilise (m)"}

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        num_heads: int = 1,
        exponential_forget: bool = False,
    ) -> None:
        check_positive_int("hidden_size", hidden_size)
        self.num_heads = check_heads(hidden_size, num_heads)
        self.exponential_forget = check_bool("exponential_forget", exponential_forget)
        super().__init__(input_size, hidden_size, state_sizes=(hidden_size,) * 4)
        self.bias = check_bool("bias", bias)
        H, d = hidden_size, hidden_size // num_heads

        def new(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(*shape, device=device, dtype=dtype))

        self.weight_ih = new(4 * H, input_size)
        self.weight_hh = new(num_heads, 4 * d, d)
        self.bias_ih = new(4 * H) if bias else None
        self.bias_hh = new(4 * H) if bias else None
        self.reset_parameters()

    def recurrent_matrix(self) -> Tensor:
        """R (4H, H), block-diagonal: the heads' blocks of ``weight_hh`` in ``weight_ih``'s row
        order (gate by gate, head by head within each gate)."""
        R = torch.block_diag(*self.weight_hh)  # (K·4d, H), rows head by head
        return R.unflatten(0, (self.num_heads, 4, -1)).transpose(0, 1).flatten(0, 2)

    def stabilised_gates(
        self, log_i: Tensor, log_f: Tensor, m: Tensor, n: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """i', f' and the new stabiliser m_t from log i, log f and m_{t-1}, n_{t-1} (each (B, H));
        :func:`stabilised_gates` with a fresh stabiliser where nothing is stored yet."""
        m_prev = torch.where(n == 0, -math.inf, m)  # an empty memory has no stabiliser yet
        return stabilised_gates(log_i, log_f, m_prev)

    def preactivations(self, x: Tensor, h: Tensor) -> tuple[Tensor, ...]:
        """ĩ, f̃, z̃, õ = W x_t + R h_{t-1} + b, each (B, H)."""
        pre = F.linear(x, self.weight_ih, self.bias_ih) + h @ self.recurrent_matrix().T  # (B, 4H)
        if self.bias_hh is not None:
            pre = pre + self.bias_hh
        return pre.chunk(4, dim=-1)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        h, c, n, m = state  # each (B, H)
        i_pre, f_pre, z_pre, o_pre = self.preactivations(x, h)
        log_i = i_pre  # the exponential input gate: i = exp(ĩ)
        log_f = f_pre if self.exponential_forget else F.logsigmoid(f_pre)
        i, f, m = self.stabilised_gates(log_i, log_f, m, n)  # i', f' <= 1; m the stabiliser
        z = torch.tanh(z_pre)
        o = torch.sigmoid(o_pre)
        c = f * c + i * z  # the cell state, scaled by exp(-m)
        n = f * n + i  # the normaliser, on the same scale
        h = o * (c / n)
        return h, (h, c, n, m), {"input": i, "forget": f, "candidate": z, "output": o}

    def extra_repr(self) -> str:
        flags = [f"num_heads={self.num_heads}"] if self.num_heads != 1 else []
        flags += ["bias=False"] if not self.bias else []
        flags += ["exponential_forget=True"] if self.exponential_forget else []
        return ", ".join([f"{self.input_size}, {self.hidden_size}", *flags])
