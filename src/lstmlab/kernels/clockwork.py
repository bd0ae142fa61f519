"""The Clockwork RNN (Koutník et al. 2014) as the fused Elman kernel (csrc/rnn.h).

A clockwork step is an Elman step in which idle modules keep their state: with W_H's
fast-to-slow blocks held at zero (as :meth:`ClockworkRNNCell.step` holds them) and a keep weight
of 1 for every unit of a module whose clock does not strike (``t mod T_i != 0``), the kernel's
zoneout form ``h_t = keep ⊙ h_{t-1} + (1 - keep) ⊙ φ(...)`` is eq. 1 of the paper. Zoneout on
top keeps a running unit with its own weight k: ``keep = 1 - (1 - k) ⊙ running``. The kernel
computes every module's rows at every step (the readable step skips idle ones); what it saves
is the Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lstmlab.kernels._common import (
    fused_sequence_op,
    reverse_padded,
    runs_here_or_triton,
)
from lstmlab.kernels.rnn import elman_sequence
from lstmlab.nn import dispatch
from lstmlab.nn.cells.clockwork import ClockworkRNNCell


def clockwork_sequence(
    cell: ClockworkRNNCell,
    x: Tensor,
    state: tuple[Tensor, ...],
    lengths: Tensor | None,
    reverse: bool,
    *,
    recurrent_mask: Tensor | None = None,
    zoneout: Sequence[Tensor] = (),
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run a clockwork cell over ``x`` (T, B, I) like :func:`lstmlab.nn.recurrent.run`; the state
    is ``(h (B, H), clock (B, 1))``, the clock counting each row's valid steps."""
    h0, clock = state
    steps = torch.arange(x.shape[0], device=x.device)  # (T,)
    # Each row's t at every step it runs, in the order the kernel runs (a reversed row starts
    # its clock at its last valid step): (T, B, 1).
    t = clock.detach().long().unsqueeze(0) + steps.view(-1, 1, 1)
    periods = torch.tensor(cell.periods, device=x.device).repeat_interleave(cell.module_size)
    running = (t % periods == 0).to(x.dtype)  # (T, B, H)
    if reverse:  # the kernel takes keep weights in the order of time
        running = reverse_padded(running, lengths)
    keep = 1 - running if not zoneout else 1 - (1 - zoneout[0]) * running
    out, h_n = elman_sequence(
        cell,
        cell._recurrent(cell.hidden_size),
        x,
        h0,
        lengths,
        reverse,
        recurrent_mask=recurrent_mask,
        keep=keep,
    )
    ran = x.shape[0] if lengths is None else lengths.to(clock.dtype).unsqueeze(-1)  # (B, 1)
    return out, (h_n, torch.remainder(clock + ran, cell.cycle))


dispatch.register_sequence_op(
    ClockworkRNNCell, fused_sequence_op(clockwork_sequence), accepts=runs_here_or_triton
)
