"""Layer-normalised LSTM and GRU (Ba, Kiros & Hinton 2016, "Layer Normalization").

The paper's LN-LSTM (supplementary material) normalises the input and the recurrent
pre-activations separately, each over the whole 4H vector (not gate by gate), and the cell state
before its output tanh::

    (i, f, g, o) = LN(W_x x; α1, β1) + LN(W_h h_{t-1}; α2, β2) + b
    c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
    h_t = σ(o) ⊙ tanh(LN(c_t; α3, β3))

Whole-vector normalisation is the paper's equation and what TensorFlow Addons'
``LayerNormLSTMCell`` does (tf.contrib's ``LayerNormBasicLSTMCell`` normalised each gate on its
own). The three shifts β1 + β2 + b of the gates are one vector of freedom; here they are torch's
two biases ``bias_ih + bias_hh``, so the input and recurrent norms carry gains only and a
forget-gate bias set in ``bias_ih`` acts as it does in the plain LSTM.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlab.nn._checks import check_positive_int
from lstmlab.nn.cells.base import Cell, Gates, State

EPS = 1e-5  # torch.nn.LayerNorm's default


class _CellWithNorms(Cell):
    """Initialisation shared by the LN cells: torch's uniform weights, unit gains, zero shifts."""

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name, p in self.named_parameters():
            if not name.startswith("ln_"):
                nn.init.uniform_(p, -bound, bound)
        for norm in (m for m in self.modules() if isinstance(m, nn.LayerNorm)):
            norm.reset_parameters()  # gain 1, shift 0 (Ba et al. 2016)


class LayerNormLSTMCell(_CellWithNorms):
    r"""One step of the layer-normalised LSTM (Ba, Kiros & Hinton 2016).

    .. math::
        (i, f, g, o) &= \mathrm{LN}(W_{ih} x; \gamma_{ih}) + b_{ih}
                        + \mathrm{LN}(W_{hh} h_{t-1}; \gamma_{hh}) + b_{hh} \\
        c_t &= \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh(g) \\
        h_t &= \sigma(o) \odot \tanh(\mathrm{LN}(c_t; \gamma_c, \beta_c)) \\
        h_t &\leftarrow W_{hr} h_t \quad\text{(if proj\_size > 0)}

    ``LN(v; γ, β) = γ ⊙ (v - mean(v)) / sqrt(var(v) + 1e-5) + β`` over the features of each row
    (4H for the pre-activations, H for the cell state).

    Parameters: ``weight_ih`` (4H, input_size), ``weight_hh`` (4H, P), ``bias_ih``, ``bias_hh``
    (4H,) -- rows i, f, g, o as torch -- ``ln_ih.weight``, ``ln_hh.weight`` (4H,),
    ``ln_c.weight``, ``ln_c.bias`` (H,), ``weight_hr`` (P, H) with P = proj_size or H. In a layer
    they are named ``ln_ih_weight_l0``, ... Gains start at 1, ``ln_c.bias`` at 0.

    Shapes: ``step(x (B, input_size), (h (B, P), c (B, H)))``.

    Example::

        >>> cell = LayerNormLSTMCell(8, 16)
        >>> h, (h, c), gates = cell.step(torch.randn(4, 8), cell.initial_state(4))
    """

    gate_names = ("input", "forget", "candidate", "output")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        proj_size: int = 0,
    ) -> None:
        check_positive_int("proj_size", proj_size, minimum=0)
        if proj_size >= hidden_size:
            raise ValueError(
                f"proj_size must be smaller than hidden_size={hidden_size} "
                f"(0 disables projection); got proj_size={proj_size}"
            )
        H, P = hidden_size, proj_size or hidden_size
        super().__init__(input_size, hidden_size, state_sizes=(P, H), output_size=P)
        self.bias, self.proj_size = bias, proj_size
        kw = dict(device=device, dtype=dtype)
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, P, **kw))
        self.bias_ih = nn.Parameter(torch.empty(4 * H, **kw)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * H, **kw)) if bias else None
        self.weight_hr = nn.Parameter(torch.empty(P, H, **kw)) if proj_size else None
        self.ln_ih = nn.LayerNorm(4 * H, eps=EPS, bias=False, **kw)
        self.ln_hh = nn.LayerNorm(4 * H, eps=EPS, bias=False, **kw)
        self.ln_c = nn.LayerNorm(H, eps=EPS, bias=bias, **kw)
        self.reset_parameters()

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        h, c = state  # (B, P), (B, H)
        z = self.ln_ih(F.linear(x, self.weight_ih)) + self.ln_hh(F.linear(h, self.weight_hh))
        if self.bias_ih is not None:
            z = z + self.bias_ih + self.bias_hh  # (B, 4H)
        i, f, g, o = z.chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(self.ln_c(c))  # the cell state is normalised before its tanh
        if self.weight_hr is not None:
            h = F.linear(h, self.weight_hr)  # (B, H) -> (B, P)
        return h, (h, c), {"input": i, "forget": f, "candidate": g, "output": o}

    def extra_repr(self) -> str:
        extra = "" if self.bias else ", bias=False"
        extra += f", proj_size={self.proj_size}" if self.proj_size else ""
        return f"{self.input_size}, {self.hidden_size}{extra}"


class LayerNormGRUCell(_CellWithNorms):
    r"""One step of the layer-normalised GRU: torch's GRU (reset after the matmul) with the LN of
    Ba et al. 2016 on its input and recurrent pre-activations, each over the whole 3H vector.

    .. math::
        (x_r, x_z, x_n) &= \mathrm{LN}(W_{ih} x; \gamma_{ih}) + b_{ih}, \quad
        (h_r, h_z, h_n) = \mathrm{LN}(W_{hh} h_{t-1}; \gamma_{hh}) + b_{hh} \\
        r &= \sigma(x_r + h_r), \quad z = \sigma(x_z + h_z), \quad n = \tanh(x_n + r \odot h_n) \\
        h_t &= (1 - z) \odot n + z \odot h_{t-1}

    The GRU has no cell state, so nothing is normalised after the update. Parameters:
    ``weight_ih`` (3H, input_size), ``weight_hh`` (3H, H), ``bias_ih``, ``bias_hh`` (3H,) --
    rows r, z, n as torch -- and ``ln_ih.weight``, ``ln_hh.weight`` (3H,).

    Example::

        >>> cell = LayerNormGRUCell(8, 16)
        >>> h, (h,), gates = cell.step(torch.randn(4, 8), cell.initial_state(4))
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(input_size, hidden_size, state_sizes=(hidden_size,))
        H, kw = hidden_size, dict(device=device, dtype=dtype)
        self.bias = bias
        self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(3 * H, H, **kw))
        self.bias_ih = nn.Parameter(torch.empty(3 * H, **kw)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(3 * H, **kw)) if bias else None
        self.ln_ih = nn.LayerNorm(3 * H, eps=EPS, bias=False, **kw)
        self.ln_hh = nn.LayerNorm(3 * H, eps=EPS, bias=False, **kw)
        self.reset_parameters()

    def carry(self, gates: Gates) -> Tensor:
        return gates["update"]  # h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        (h,) = state  # (B, H)
        a = self.ln_ih(F.linear(x, self.weight_ih))  # (B, 3H)
        b = self.ln_hh(F.linear(h, self.weight_hh))
        if self.bias_ih is not None:
            a, b = a + self.bias_ih, b + self.bias_hh
        xr, xz, xn = a.chunk(3, dim=-1)
        hr, hz, hn = b.chunk(3, dim=-1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        return h, (h,), {"reset": r, "update": z, "candidate": n}

    def extra_repr(self) -> str:
        extra = "" if self.bias else ", bias=False"
        return f"{self.input_size}, {self.hidden_size}{extra}"
