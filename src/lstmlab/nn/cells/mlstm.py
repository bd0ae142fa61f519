r"""The mLSTM: the xLSTM's LSTM with a matrix memory (Beck et al. 2024, "xLSTM: Extended Long
Short-Term Memory", arXiv 2405.04517, section 2.3 and appendix).

Each head stores key-value pairs in a d×d matrix ``C`` under an exponential input gate, and
reads it with a query; nothing feeds h back, so the whole sequence also has a parallel form
(:mod:`lstmlab.kernels.mlstm`), which this recurrent step is the readable twin of.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlab.nn._checks import check_positive_int
from lstmlab.nn.cells.base import Cell, Gates, State
from lstmlab.nn.cells.slstm import stabilised_gates

EPS = 1e-6  # added to the normaliser, as in the xLSTM reference code


def normalised(cq: Tensor, nq: Tensor, m: Tensor) -> Tensor:
    r"""``h̃ = C q / (max(|nᵀq|, exp(-m)) + ε)`` for stabilised ``C``, ``n`` (the true ones times
    ``exp(-m)``): ``cq`` (..., d), ``nq`` and ``m`` (...). Numerator and denominator are
    multiplied by ``s = exp(min(m, 0))`` first, which leaves the value unchanged and keeps
    ``exp(-m)`` from overflowing for very negative ``m`` (large inputs)."""
    s = torch.exp(torch.clamp(m, max=0.0))
    denominator = torch.maximum(nq.abs() * s, torch.exp(-torch.relu(m))) + EPS * s
    return cq * (s / denominator).unsqueeze(-1)


class MLSTMCell(Cell):
    r"""One step of the mLSTM (Beck et al. 2024, eqs. 19-27, stabilised as in their appendix).

    Per head, with d = hidden_size / num_heads:

    .. math::
        q_t &= W_q x_t + b_q, \quad k_t = \tfrac{1}{\sqrt d}(W_k x_t + b_k), \quad
            v_t = W_v x_t + b_v \\
        \log i_t &= w_i^\top x_t + b_i, \quad
            \log f_t = \log\sigma(w_f^\top x_t + b_f) \quad
            \text{(} w_f^\top x_t + b_f \text{ if exponential\_forget)} \\
        m_t &= \max(\log f_t + m_{t-1}, \log i_t) \\
        i'_t &= \exp(\log i_t - m_t), \quad f'_t = \exp(\log f_t + m_{t-1} - m_t) \\
        C_t &= f'_t C_{t-1} + i'_t v_t k_t^\top, \quad n_t = f'_t n_{t-1} + i'_t k_t \\
        \tilde h_t &= C_t q_t / (\max(|n_t^\top q_t|, e^{-m_t}) + \epsilon) \\
        h_t &= \sigma(W_o x_t + b_o) \odot \tilde h_t

    ``C`` and ``n`` are stored times ``exp(-m)`` (the stabiliser), so ``max(|nᵀq|, e^{-m})`` is
    the paper's ``max(|nᵀq|, 1)`` of the unstabilised state; ε = 1e-6 as in the reference code.

    Parameters: ``weight_ih`` (4H + 2·heads, input_size) and ``bias_ih`` (4H + 2·heads,), rows
    in the order q, k, v, o (H each), then the input and forget gates (one row per head).
    State ``(C, n, m)``: C (B, heads·d·d) -- each head's d×d matrix, row-major --, n
    (B, heads·d), m (B, heads). Gates ``input`` (i'), ``forget`` (f'), each head's value
    repeated over its d units, and ``output``, each (B, H).

    Example::

        >>> cell = MLSTMCell(8, 16, num_heads=4)
        >>> h, (C, n, m), gates = cell.step(torch.randn(2, 8), cell.initial_state(2))
        >>> C.shape, sorted(gates)
        (torch.Size([2, 64]), ['forget', 'input', 'output'])
    """

    zoned_state_parts = 0  # the state is a memory read by a query, not h: nothing to zone out
    # For lstmlab.viz's diagrams: the state parts' names, the names of what ``project`` returns,
    # and the methods step calls that are bookkeeping, each drawn as one labelled operation.
    state_names = ("C", "n", "m")
    named_outputs = {"project": ("q", "k", "v", "o", "i", "f")}
    drawn_as_one = {"stabilised_gates": "stabilise (m)", "normalise": "÷ max(|nᵀq|, 1)"}
    stabilised_gates = staticmethod(stabilised_gates)

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
        check_positive_int("num_heads", num_heads)
        if isinstance(hidden_size, int) and hidden_size % num_heads:
            raise ValueError(
                f"hidden_size must be a multiple of num_heads; got hidden_size={hidden_size}, "
                f"num_heads={num_heads}"
            )
        d = hidden_size // num_heads if isinstance(hidden_size, int) else 0
        sizes = (num_heads * d * d, num_heads * d, num_heads)
        super().__init__(input_size, hidden_size, state_sizes=sizes)
        self.bias, self.num_heads, self.head_size = bias, num_heads, d
        self.exponential_forget = exponential_forget
        rows = 4 * hidden_size + 2 * num_heads
        kw = dict(device=device, dtype=dtype)
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size, **kw))
        self.bias_ih = nn.Parameter(torch.empty(rows, **kw)) if bias else None
        self.reset_parameters()

    def project(self, x: Tensor) -> tuple[Tensor, ...]:
        """x (..., input_size) -> q, k, v, o (..., H), log i, log f (..., heads); head j of q, k
        and v is features j·d to (j+1)·d."""
        H, heads = self.hidden_size, self.num_heads
        z = F.linear(x, self.weight_ih, self.bias_ih)
        q, k, v, o, log_i, f = z.split([H, H, H, H, heads, heads], dim=-1)
        log_f = f if self.exponential_forget else F.logsigmoid(f)
        return q, k / math.sqrt(self.head_size), v, o, log_i, log_f

    def normalise(self, cq: Tensor, n: Tensor, q: Tensor, m: Tensor) -> Tensor:
        """``C q / (max(|nᵀq|, exp(-m)) + ε)`` per head (:func:`normalised`): cq, n, q
        (B, heads, d), m (B, heads)."""
        return normalised(cq, (n * q).sum(-1), m)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        heads, d = self.num_heads, self.head_size
        C, n, m = (
            state[0].unflatten(-1, (heads, d, d)),
            state[1].unflatten(-1, (heads, d)),
            state[2],
        )
        q, k, v, o, log_i, log_f = self.project(x)  # (B, H) / (B, heads)
        q, k, v = (t.unflatten(-1, (heads, d)) for t in (q, k, v))  # (B, heads, d)
        i, f, m_new = self.stabilised_gates(log_i, log_f, m)  # (B, heads); m the stabiliser
        C = f[..., None, None] * C + i[..., None, None] * (v.unsqueeze(-1) * k.unsqueeze(-2))
        n = f[..., None] * n + i[..., None] * k
        cq = (C @ q.unsqueeze(-1)).squeeze(-1)  # C q, (B, heads, d)
        h_tilde = self.normalise(cq, n, q, m_new)
        o = torch.sigmoid(o)
        h = o * h_tilde.flatten(-2)  # (B, H)
        gates = {  # each head's gate over its d units
            "input": i.repeat_interleave(d, dim=-1),
            "forget": f.repeat_interleave(d, dim=-1),
            "output": o,
        }
        return h, (C.flatten(-3), n.flatten(-2), m_new), gates

    def extra_repr(self) -> str:
        extra = "" if self.bias else ", bias=False"
        extra += f", num_heads={self.num_heads}" if self.num_heads != 1 else ""
        extra += ", exponential_forget=True" if self.exponential_forget else ""
        return f"{self.input_size}, {self.hidden_size}{extra}"
