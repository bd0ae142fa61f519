r"""minGRU and minLSTM over a whole sequence at once: a blocked linear scan.

Both cells are ``h_t = a_t ⊙ h_{t-1} + b_t`` with ``a_t ∈ [0, 1]`` and ``b_t`` read from
``x_t`` alone (:mod:`lstmlab.nn.cells.minimal`), so every step's coefficients come from one
matrix product, and h is a scan whose steps compose associatively:
``(a_1, b_1) ∘ (a_2, b_2) = (a_1 a_2, a_2 b_1 + b_2)``. The sequence is cut into about √T blocks
of √T steps (Blelloch 1990, the two-level scan):

1. every block runs its steps from a zero state -- all blocks side by side, one step at a time --
   and ``A``, the product of its ``a`` so far (``cumprod``);
2. the blocks' end states are chained, block after block: ``start_{k+1} = A_k start_k + end_k``;
3. each step adds its block's start state: ``h_t = A_t start + local_t``.

That is about 2√T vectorised operations in place of the step loop's T steps, with the loop's own
arithmetic (multiplications and additions), so its precision too. Feng et al. (2024, appendix B)
scan in log space instead (Heinsen 2023: ``log h_t = a*_t + logcumsumexp(log b - a*)``,
``a* = cumsum(log a)``), which needs ``b > 0`` (their ``g``) or a split into signs, cancels digits
as ``|a*|`` grows (in float32 at T = 1024, some thirty times the step loop's error against
float64) and costs two transcendental functions per element. Here any sign is exact; products
of ``a`` only shrink, so nothing overflows, and one that underflows is a state forgotten.

Padded steps get ``a = 1, b = 0``, which leaves the state as it was; ``reverse`` runs each
sequence reversed within its length. The scan is one operator, ``torch.ops.lstmlab.linear_scan``,
made of torch ops (any device), whose backward is the same scan run backwards in time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmlab.kernels import backend
from lstmlab.kernels._common import readable_unless, run_order, second_derivatives_by_readable_loop
from lstmlab.nn import dispatch
from lstmlab.nn.cells.minimal import MinGRUCell, MinLSTMCell

HALF = (torch.bfloat16, torch.float16)  # computed in float32


def _scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """``h_t = a_t ⊙ h_{t-1} + b_t``: a, b (T, ...), h0 (...) -> h (T, ...)."""
    if b.dtype in HALF:
        return _scan(a.float(), b.float(), h0.float()).to(b.dtype)
    steps = a.shape[0]
    size = math.isqrt(steps - 1) + 1  # steps per block, ⌈√T⌉
    blocks = -(-steps // size)
    pad = blocks * size - steps  # a = 1, b = 0: steps that change nothing
    if pad:
        a = torch.cat([a, a.new_ones(pad, *a.shape[1:])])
        b = torch.cat([b, b.new_zeros(pad, *b.shape[1:])])
    a, b = a.unflatten(0, (blocks, size)), b.unflatten(0, (blocks, size))  # (N, L, ...)
    A = torch.cumprod(a, dim=1)  # a's product within each block so far
    local = torch.empty_like(b)  # each block from a zero state
    local[:, 0] = b[:, 0]
    for t in range(1, size):  # all blocks at once
        torch.addcmul(b[:, t], a[:, t], local[:, t - 1], out=local[:, t])
    starts, h = torch.empty_like(b[:, 0]), h0
    for k in range(blocks):  # each block starts where the one before ended
        starts[k] = h
        h = torch.addcmul(local[k, -1], A[k, -1], h)
    h = torch.addcmul(local, A, starts.unsqueeze(1))  # (N, L, ...)
    return h.flatten(0, 1)[:steps].contiguous()  # (T, ...), as the fake kernel says


@torch.library.custom_op("lstmlab::linear_scan", mutates_args=())
def linear_scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """``h_t = a_t ⊙ h_{t-1} + b_t`` for every t at once: a, b (T, ...), h0 (...) -> h (T, ...).
    Exact for any ``b``; ``a`` in [0, 1] keeps every intermediate product bounded."""
    return _scan(a, b, h0)


@linear_scan.register_fake
def _(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    return b.new_empty(b.shape)


def _save(ctx, inputs, output):
    a, _, h0 = inputs
    ctx.save_for_backward(a, output, h0)


def _backward(ctx, grad: Tensor):
    """With λ_t = dL/dh_t through every later step, ``λ_t = grad_t + a_{t+1} λ_{t+1}``: the same
    scan backwards in time. Then dL/db_t = λ_t, dL/da_t = λ_t h_{t-1}, dL/dh0 = a_1 λ_1. Made
    of differentiable ops, so second derivatives are exact too."""
    a, h, h0 = ctx.saved_tensors
    later = torch.cat([a[1:], torch.zeros_like(a[:1])])  # a_{t+1}; the last one meets λ = 0
    lam = linear_scan(later.flip(0), grad.flip(0), torch.zeros_like(h0)).flip(0)
    before = torch.cat([h0.unsqueeze(0), h[:-1]])  # h_{t-1}
    return lam * before, lam, a[0] * lam[0]


linear_scan.register_autograd(_backward, setup_context=_save)


def _min_gru(cell: MinGRUCell, x: Tensor) -> tuple[Tensor, Tensor]:
    """minGRU's ``1 - z`` and ``z ⊙ h̃`` for every step: x (T, B, I) -> (T, B, H) each."""
    k, pre = F.linear(x, cell.weight_ih, cell.bias_ih).chunk(2, dim=-1)
    z = torch.sigmoid(k)
    return 1 - z, z * cell.candidate(pre)


def _min_lstm(cell: MinLSTMCell, x: Tensor) -> tuple[Tensor, Tensor]:
    """minLSTM's ``f'`` and ``i' ⊙ h̃`` for every step: x (T, B, I) -> (T, B, H) each."""
    kf, ki, pre = F.linear(x, cell.weight_ih, cell.bias_ih).chunk(3, dim=-1)
    f, i = torch.sigmoid(kf), torch.sigmoid(ki)
    return f / (f + i), i / (f + i) * cell.candidate(pre)


_COEFFICIENTS: dict[type, Callable[..., tuple[Tensor, Tensor]]] = {
    MinGRUCell: _min_gru,
    MinLSTMCell: _min_lstm,
}


@readable_unless()  # zoneout: the readable loop
def minimal_sequence(
    cell: MinGRUCell | MinLSTMCell,
    x: Tensor,
    state: tuple[Tensor, ...],
    lengths: Tensor | None,
    reverse: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run a minGRU or minLSTM cell over ``x`` (T, B, I) like :func:`lstmlab.nn.recurrent.run`:
    the output (T, B, H) and h_n (B, H)."""
    x = run_order(x, lengths, reverse)  # padding zeroed, then at the end of every sequence
    a, b = _COEFFICIENTS[type(cell)](cell, x)  # (T, B, H) each
    if lengths is not None:  # a = 1, b = 0 past each length
        live = (torch.arange(x.shape[0], device=x.device).unsqueeze(1) < lengths).unsqueeze(-1)
        a, b = torch.where(live, a, 1.0), torch.where(live, b, 0.0)
    h = linear_scan(a, b, state[0])
    return run_order(h, lengths, reverse), (h[-1],)


def runs_anywhere(x: Tensor) -> bool:
    """Torch ops only: any device and backend but ``readable``; bfloat16 and float16 inputs are
    computed in float32 inside the operator."""
    return backend.setting() != "readable" and x.dtype in (torch.float32, torch.float64, *HALF)


for _cell in (MinGRUCell, MinLSTMCell):
    dispatch.register_sequence_op(
        _cell, second_derivatives_by_readable_loop(minimal_sequence), accepts=runs_anywhere
    )
