"""The Clockwork RNN (Koutník, Greff, Gomez & Schmidhuber 2014, "A Clockwork RNN", ICML).

An Elman RNN whose hidden units are split into equal modules, each with its own clock period:
module i runs only at steps t with t mod T_i = 0 and holds its state in between, and it listens
only to itself and to slower modules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmlab.nn._checks import check_positive_int, has_values
from lstmlab.nn.cells.base import Gates, State
from lstmlab.nn.cells.rnn import ElmanCell, add_elman_parameters, check_nonlinearity


def default_periods(hidden_size: int) -> tuple[int, ...]:
    """The paper's exponential clocks 1, 2, 4, ..., 2^(G-1) for the largest G <= 8 dividing H.

    Eight modules (slowest period 128) keep the slowest clock within reach of usual training
    chunks; fewer when ``hidden_size`` does not split into eight equal modules.
    """
    check_positive_int("hidden_size", hidden_size)
    modules = max(g for g in range(1, 9) if hidden_size % g == 0)
    return tuple(2**i for i in range(modules))


def check_periods(periods: object, hidden_size: int) -> tuple[int, ...]:
    """Periods as a tuple: positive integers, non-decreasing, their count dividing hidden_size."""
    if (
        not isinstance(periods, Sequence)
        or isinstance(periods, str)
        or not periods
        or not all(isinstance(p, int) and not isinstance(p, bool) for p in periods)
    ):
        raise ValueError(
            f"periods must be a non-empty sequence of integers, e.g. (1, 2, 4, 8); got {periods!r}"
        )
    periods = tuple(periods)
    if min(periods) < 1:
        raise ValueError(
            f"periods must be positive integers (a module runs when t mod T = 0); got {periods}"
        )
    if list(periods) != sorted(periods):
        raise ValueError(
            f"periods must be sorted fast to slow (non-decreasing), as the paper "
            f"orders the modules; got {periods}"
        )
    if hidden_size % len(periods):
        raise ValueError(
            f"hidden_size={hidden_size} must split into len(periods)={len(periods)} "
            f"equal modules; got periods {periods}"
        )
    return periods


class ClockworkRNNCell(ElmanCell):
    r"""One step of the Clockwork RNN (Koutník et al. 2014, eqs. 1-2 and Fig. 2).

    The H hidden units form G equal modules of m = H / G units with periods
    T_1 <= ... <= T_G. With W_H block upper-triangular (module i receives from modules j >= i:
    slow modules feed fast ones, never the reverse):

    .. math::
        h_t^{(i)} = \begin{cases}
            \phi\big(W_I^{(i)} x_t + b_{ih}^{(i)} + \sum_{j \ge i} W_H^{(i,j)} h_{t-1}^{(j)}
                     + b_{hh}^{(i)}\big) & t \bmod T_i = 0 \\
            h_{t-1}^{(i)} & \text{otherwise}
        \end{cases}

    The state is ``(h, t)``: ``t`` (B, 1) is the index of the step about to run, a whole number
    in h's dtype (so it travels with h through every state-handling path), kept modulo the
    cycle lcm(T_1, ..., T_G) so that it stays exact. Zeros start at t = 0, where every
    module runs (pass t = 1 for 1-based time). Because the clock is state, a sequence cut into
    chunks (truncated BPTT) keeps its phase, padded steps stop its clock, and rows of a batch
    may sit at different phases.

    Skipped modules skip their work: when the whole batch shares t (always so with equal-length
    sequences) the step computes only the rows of the modules up to the slowest one that runs,
    which for the default doubling periods are exactly the running ones; otherwise it computes
    all rows and keeps the idle modules' state.

    Parameters as ``torch.nn.RNNCell``: ``weight_ih`` (H, input_size), ``weight_hh`` (H, H),
    ``bias_ih``, ``bias_hh`` (H,). The blocks of ``weight_hh`` below the block diagonal start at
    zero and are replaced by zero in ``step``, so they get no gradient and never act.
    Gates: ``{"active": 1.0 where the unit's module ran, else 0.0}``, each (B, H).

    Args:
        periods: the clock periods, sorted; ``None`` for :func:`default_periods`.
        nonlinearity: ``"tanh"`` (the paper's) or ``"relu"``.

    Example::

        >>> cell = ClockworkRNNCell(8, 16, periods=(1, 2, 4, 8))       # 4 modules of 4 units
        >>> h, (h, t), gates = cell.step(torch.randn(3, 8), cell.initial_state(3))
        >>> t.flatten().tolist()
        [1.0, 1.0, 1.0]
    """

    zoned_state_parts = 1  # (h, t): zoneout must not hold the step counter back

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        periods: Sequence[int] | None = None,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ) -> None:
        check_nonlinearity(nonlinearity)
        periods = (
            default_periods(hidden_size) if periods is None else check_periods(periods, hidden_size)
        )
        super().__init__(input_size, hidden_size, state_sizes=(hidden_size, 1))
        self.periods, self.module_size = periods, hidden_size // len(periods)
        self.cycle = math.lcm(*periods)
        add_elman_parameters(self, bias, nonlinearity, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's U(-1/sqrt(H), 1/sqrt(H)), then the fast-to-slow blocks of W_H set to zero."""
        super().reset_parameters()
        with torch.no_grad():
            self.weight_hh.copy_(self._recurrent(self.hidden_size))

    def _recurrent(self, rows: int) -> Tensor:
        """The first ``rows`` rows of W_H with the blocks from faster modules held at zero."""
        G, m, a = len(self.periods), self.module_size, rows // self.module_size
        w = self.weight_hh
        # (a, G): module i (a row of blocks) receives from module j only if j >= i.
        slower = torch.ones(G, G, dtype=torch.bool, device=w.device).triu()[:a]
        return torch.where(slower[:, None, :, None], w[:rows].view(a, m, G, m), 0.0).reshape(
            rows, G * m
        )

    def carry(self, gates: Gates) -> Tensor:
        return 1 - gates["active"]  # an idle module keeps h_{t-1} whole

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        h, clock = state  # (B, H), (B, 1): this step's t
        m = self.module_size
        # Traced (torch.export, ONNX), the clock has no values to read: the masked form.
        phases = clock.flatten().tolist() if has_values(clock) else None
        if phases and min(phases) == max(phases):  # one phase for the whole batch (usual):
            runs = [int(phases[0]) % T == 0 for T in self.periods]
            rows = m * max((i + 1 for i, run in enumerate(runs) if run), default=0)  # the rest idle
            active = torch.tensor(runs, device=h.device).repeat_interleave(m)  # (H,)
        else:  # rows at different phases: every module, then masked
            t = clock.long()  # (B, 1)
            if phases is None:  # traced: one (B, m) block per module, no constant tensor made
                active = torch.cat([(t % T == 0).expand(-1, m) for T in self.periods], dim=-1)
            else:
                periods = torch.tensor(self.periods, device=h.device)
                active = (t % periods == 0).repeat_interleave(m, dim=-1)  # (B, H)
            rows = self.hidden_size
        b_ih = None if self.bias_ih is None else self.bias_ih[:rows]
        b_hh = None if self.bias_hh is None else self.bias_hh[:rows]
        z = F.linear(x, self.weight_ih[:rows], b_ih) + F.linear(h, self._recurrent(rows), b_hh)
        new = self.phi(z)  # (B, rows)
        if rows < self.hidden_size:  # the idle tail keeps its state
            new = torch.cat([new, h[:, rows:]], dim=1)  # (B, H)
        h = torch.where(active, new, h)  # eq. 1: run, or keep h_{t-1}
        return (
            h,
            (h, torch.remainder(clock + 1, self.cycle)),
            {"active": active.to(h.dtype).expand_as(h)},
        )

    def extra_repr(self) -> str:
        extra = "" if self.bias else ", bias=False"
        extra += "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}"
        return f"{self.input_size}, {self.hidden_size}, periods={self.periods}{extra}"
