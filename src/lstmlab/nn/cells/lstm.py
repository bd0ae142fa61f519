"""The LSTM and its variants as one equation with switches.

Hochreiter & Schmidhuber 1997; forget gate: Gers, Schmidhuber & Cummins 2000; peepholes: Gers &
Schmidhuber 2000; the ablations: Greff et al. 2015, "LSTM: A Search Space Odyssey" (NIG, NFG, NOG,
NIAF, NOAF, CIFG, FGR); projection: Sak et al. 2014 (torch's ``proj_size``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlab.nn._checks import check_positive_int
from lstmlab.nn.cells.base import Cell, Gates, State


def _diagonal(weight: Tensor | None, c: Tensor) -> Tensor | float:
    """A peephole: a diagonal weight on the cell state, or nothing when the peephole is off."""
    return 0.0 if weight is None else weight * c


class LSTMCell(Cell):
    r"""One step of the LSTM, with the post's variants as switches (all off: ``torch.nn.LSTMCell``).

    .. math::
        i &= \sigma(W_{ii} x + b_{ii} + W_{hi} h_{t-1} + b_{hi} + w_{ci} \odot c_{t-1})
            &&\text{(1 if not input\_gate)} \\
        f &= \sigma(W_{if} x + b_{if} + W_{hf} h_{t-1} + b_{hf} + w_{cf} \odot c_{t-1})
            &&\text{(1 - i if coupled; 1 if not forget\_gate)} \\
        g &= \tanh(W_{ig} x + b_{ig} + W_{hg} h_{t-1} + b_{hg})
            &&\text{(no tanh if not input\_activation)} \\
        c_t &= f \odot c_{t-1} + i \odot g \\
        o &= \sigma(W_{io} x + b_{io} + W_{ho} h_{t-1} + b_{ho} + w_{co} \odot c_t)
            &&\text{(1 if not output\_gate)} \\
        h_t &= o \odot \tanh(c_t) &&\text{(} o \odot c_t \text{ if not output\_activation)} \\
        h_t &\leftarrow W_{hr} h_t &&\text{(if proj\_size > 0)}

    The peephole terms ``w_c* ⊙ c`` exist only with ``peephole=True`` (Gers & Schmidhuber 2000:
    the input and forget gates look at c_{t-1}, the output gate at c_t). With
    ``gate_recurrence=True`` (Greff's FGR) every sigmoid gate also receives ``W_gg a_{t-1}``, where
    ``a_{t-1}`` concatenates the previous step's sigmoid gate activations; ``a`` is then a third
    part of the state.

    Parameters, named as torch names them: ``weight_ih`` (n·H, input_size), ``weight_hh``
    (n·H, P), ``bias_ih``, ``bias_hh`` (n·H,), ``weight_hr`` (P, H) where n counts the computed
    pre-activations in the order i, f, g, o (a switched-off gate has no rows: NIG, NFG and CIFG
    have n = 3) and P = proj_size or H. Peepholes ``weight_ci``, ``weight_cf``, ``weight_co``
    (H,); gate recurrence ``weight_gg`` (s·H, s·H) for the s sigmoid gates.

    Shapes: ``step(x (B, input_size), (h (B, P), c (B, H)[, a (B, s·H)]))``.

    Example::

        >>> cell = LSTMCell(8, 16, peephole=True)
        >>> h, (h, c), gates = cell.step(torch.randn(4, 8), cell.initial_state(4))
        >>> sorted(gates)
        ['candidate', 'forget', 'input', 'output']
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
        proj_size: int = 0,
        peephole: bool = False,
        coupled: bool = False,
        input_gate: bool = True,
        forget_gate: bool = True,
        output_gate: bool = True,
        input_activation: bool = True,
        output_activation: bool = True,
        gate_recurrence: bool = False,
    ) -> None:
        check_variant(
            hidden_size,
            proj_size=proj_size,
            peephole=peephole,
            coupled=coupled,
            input_gate=input_gate,
            forget_gate=forget_gate,
            output_gate=output_gate,
            gate_recurrence=gate_recurrence,
        )
        H, P = hidden_size, proj_size or hidden_size
        # The pre-activations this variant computes (rows of weight_ih in this order), and which
        # of them are sigmoid gates (the ones FGR feeds back).
        gate_names = tuple(
            name
            for name, on in (
                ("input", input_gate),
                ("forget", forget_gate and not coupled),
                ("candidate", True),
                ("output", output_gate),
            )
            if on
        )
        sigmoid_gates = tuple(name for name in gate_names if name != "candidate")
        n, s = len(gate_names), len(sigmoid_gates)
        sizes = (P, H, s * H) if gate_recurrence else (P, H)
        super().__init__(input_size, hidden_size, state_sizes=sizes, output_size=P)
        self.gate_names, self.sigmoid_gates = gate_names, sigmoid_gates
        self.bias, self.proj_size, self.peephole, self.coupled = bias, proj_size, peephole, coupled
        self.input_gate, self.forget_gate, self.output_gate = input_gate, forget_gate, output_gate
        self.input_activation, self.output_activation = input_activation, output_activation
        self.gate_recurrence = gate_recurrence

        def new(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(*shape, device=device, dtype=dtype))

        self.weight_ih = new(n * H, input_size)
        self.weight_hh = new(n * H, P)
        self.bias_ih = new(n * H) if bias else None
        self.bias_hh = new(n * H) if bias else None
        self.weight_hr = new(P, H) if proj_size else None
        self.weight_ci = new(H) if peephole and input_gate else None
        self.weight_cf = new(H) if peephole and forget_gate and not coupled else None
        self.weight_co = new(H) if peephole and output_gate else None
        self.weight_gg = new(s * H, s * H) if gate_recurrence else None
        self.reset_parameters()

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        h, c = state[0], state[1]  # (B, P), (B, H)
        z = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        pre = dict(zip(self.gate_names, z.chunk(len(self.gate_names), dim=-1)))  # each (B, H)
        if self.weight_gg is not None:  # Greff et al. 2015, FGR: gates see all gates of step t-1
            fed_back = F.linear(state[2], self.weight_gg).chunk(len(self.sigmoid_gates), dim=-1)
            for name, r in zip(self.sigmoid_gates, fed_back):
                pre[name] = pre[name] + r

        i = torch.sigmoid(pre["input"] + _diagonal(self.weight_ci, c)) if self.input_gate else 1.0
        if self.coupled:  # CIFG: forget exactly what is written
            f = 1.0 - i
        elif self.forget_gate:
            f = torch.sigmoid(pre["forget"] + _diagonal(self.weight_cf, c))
        else:
            f = 1.0
        g = torch.tanh(pre["candidate"]) if self.input_activation else pre["candidate"]
        c = f * c + i * g  # the conveyor belt: forget some, add some
        o = torch.sigmoid(pre["output"] + _diagonal(self.weight_co, c)) if self.output_gate else 1.0
        h = o * torch.tanh(c) if self.output_activation else o * c
        if self.weight_hr is not None:
            h = F.linear(h, self.weight_hr)  # (B, H) -> (B, P)

        computed = {"input": i, "forget": f, "candidate": g, "output": o}
        gates = {k: v for k, v in computed.items() if isinstance(v, Tensor)}
        if self.gate_recurrence:
            return h, (h, c, torch.cat([gates[k] for k in self.sigmoid_gates], dim=-1)), gates
        return h, (h, c), gates

    def extra_repr(self) -> str:
        flags = [f"{k}={v}" for k, v in variant_flags(self).items() if v != _DEFAULTS[k]]
        return ", ".join([f"{self.input_size}, {self.hidden_size}", *flags])


_DEFAULTS = dict(
    bias=True,
    proj_size=0,
    peephole=False,
    coupled=False,
    input_gate=True,
    forget_gate=True,
    output_gate=True,
    input_activation=True,
    output_activation=True,
    gate_recurrence=False,
)


def variant_flags(cell: LSTMCell) -> dict[str, object]:
    """The constructor switches of an LSTM cell, e.g. to build its twin in another direction."""
    return {k: getattr(cell, k) for k in _DEFAULTS}


def check_variant(
    hidden_size: int,
    *,
    proj_size: int,
    peephole: bool,
    coupled: bool,
    input_gate: bool,
    forget_gate: bool,
    output_gate: bool,
    gate_recurrence: bool,
) -> None:
    """Reject switch combinations that leave no well-defined cell."""
    check_positive_int("hidden_size", hidden_size, minimum=0)  # a cell's may be 0, as torch's
    check_positive_int("proj_size", proj_size, minimum=0)
    if proj_size and proj_size >= hidden_size:
        raise ValueError(
            f"proj_size must be smaller than hidden_size={hidden_size} "
            f"(0 disables projection); got proj_size={proj_size}"
        )
    if coupled and not forget_gate:
        raise ValueError(
            "coupled=True sets the forget gate to 1 - input gate, so it needs "
            "forget_gate=True; got forget_gate=False"
        )
    if coupled and not input_gate:
        raise ValueError(
            "coupled=True needs input_gate=True (with i = 1 the coupled forget "
            "gate f = 1 - i would be 0); got input_gate=False"
        )
    no_gates = not (input_gate or forget_gate or output_gate)
    if gate_recurrence and no_gates:
        raise ValueError(
            "gate_recurrence=True feeds gates back, but input_gate, forget_gate and "
            "output_gate are all False"
        )
    if peephole and no_gates:
        raise ValueError(
            "peephole=True connects the cell state to the gates, but input_gate, "
            "forget_gate and output_gate are all False"
        )
