r"""The mLSTM over a whole sequence at once: its parallel form (Beck et al. 2024, xLSTM,
appendix, "parallel formulation"), exact against the recurrent step of
:class:`lstmlab.nn.cells.mlstm.MLSTMCell` -- outputs and the final state ``(C, n, m)``.

Per head, with ``F_t = Σ_{r≤t} log f_r`` and the initial state ``(C_0, n_0, m_0)``:

.. math::
    \log D_{ts} &= F_t - F_s + \log i_s \quad (s \le t; -\infty \text{ above the diagonal}) \\
    m_t &= \max(F_t + m_0, \max_s \log D_{ts}) \quad
        \text{(the recurrent stabiliser, unrolled)} \\
    D'_{ts} &= e^{\log D_{ts} - m_t}, \quad w_t = e^{F_t + m_0 - m_t} \\
    S &= (Q K^\top) \odot D' \\
    C_t q_t &= (S V)_t + w_t C_0 q_t, \quad
        n_t^\top q_t = \textstyle\sum_s S_{ts} + w_t n_0^\top q_t

then ``h̃_t = C_t q_t / (max(|n_tᵀ q_t|, e^{-m_t}) + ε)`` as in the step, and the final state is
row T: ``C_T = w_T C_0 + Σ_s D'_{Ts} v_s k_sᵀ``, ``n_T = w_T n_0 + Σ_s D'_{Ts} k_s``, ``m_T``.
The paper's form is the special case of a zero initial state. Since the form starts from any
state and hands back the exact recurrent one, a long sequence runs it on chunks of
:data:`CHUNK` steps, each starting from the state the one before ended in (the chunkwise form
of the xLSTM kernels): work and memory grow as T·CHUNK rather than T², and the cumulative
sums F stay short, so ``F_t - F_s`` keeps its digits in float32. Padded steps get
``f = 1, i = 0`` (``log i = -inf``), which leaves the state as it was.

One operator, ``torch.ops.lstmlab.mlstm_parallel``, made of torch ops (any device); its backward
(``mlstm_parallel_backward``) recomputes the forward and takes its vector-Jacobian product.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lstmlab.kernels._common import (
    first_derivative_only,
    readable_unless,
    run_order,
    second_derivatives_by_readable_loop,
)
from lstmlab.kernels.scan import HALF, runs_anywhere
from lstmlab.nn import dispatch
from lstmlab.nn.cells.mlstm import MLSTMCell, normalised

CHUNK = 64  # steps per parallel block; the blocks run one after another


def _parallel(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    log_f: Tensor,
    log_i: Tensor,
    C0: Tensor,
    n0: Tensor,
    m0: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """q, k, v (B, heads, T, d); log_f, log_i (B, heads, T); C0 (B, heads, d, d), n0
    (B, heads, d), m0 (B, heads) -> h̃ (B, heads, T, d) and the final C, n, m."""
    if q.dtype in HALF:  # exponentials of differences of sums: float32's digits
        wide = _parallel(*(t.float() for t in (q, k, v, log_f, log_i, C0, n0, m0)))
        return tuple(t.to(q.dtype) for t in wide)  # type: ignore[return-value]
    steps = q.shape[2]
    F = log_f.cumsum(-1)  # (B, heads, T)
    causal = torch.ones(steps, steps, dtype=torch.bool, device=q.device).tril()
    log_D = F.unsqueeze(-1) - F.unsqueeze(-2) + log_i.unsqueeze(-2)  # (B, heads, T, T): t, s
    log_D = torch.where(causal, log_D, -torch.inf)
    start = F + m0.unsqueeze(-1)  # the initial state's weight, in log space
    m = torch.maximum(start, log_D.amax(-1))  # (B, heads, T)
    D = torch.exp(log_D - m.unsqueeze(-1))
    w = torch.exp(start - m)
    S = (q @ k.transpose(-1, -2)) * D  # (B, heads, T, T)
    cq = S @ v + w.unsqueeze(-1) * (q @ C0.transpose(-1, -2))  # C_t q_t, (B, heads, T, d)
    nq = S.sum(-1) + w * (q @ n0.unsqueeze(-1)).squeeze(-1)  # n_tᵀ q_t, (B, heads, T)
    last, w_T = D[..., -1, :], w[..., -1]  # (B, heads, T), (B, heads)
    C = w_T[..., None, None] * C0 + torch.einsum("bhs,bhsa,bhsc->bhac", last, v, k)
    n = w_T[..., None] * n0 + torch.einsum("bhs,bhsa->bha", last, k)
    return normalised(cq, nq, m), C, n, m[..., -1]


def _chunkwise(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    log_f: Tensor,
    log_i: Tensor,
    C: Tensor,
    n: Tensor,
    m: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """:func:`_parallel` over blocks of :data:`CHUNK` steps, each from the state the block
    before ended in."""
    outputs = []
    for start in range(0, q.shape[2], CHUNK):
        block = slice(start, start + CHUNK)
        h, C, n, m = _parallel(
            q[:, :, block], k[:, :, block], v[:, :, block], log_f[..., block], log_i[..., block],
            C, n, m,
        )  # fmt: skip
        outputs.append(h)
    return torch.cat(outputs, dim=2), C, n, m


@torch.library.custom_op("lstmlab::mlstm_parallel", mutates_args=())
def mlstm_parallel(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    log_f: Tensor,
    log_i: Tensor,
    C0: Tensor,
    n0: Tensor,
    m0: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The parallel mLSTM (see the module): h̃ (B, heads, T, d) and the final C, n, m, each
    a fresh contiguous tensor, as the fake kernel says."""
    outputs = _chunkwise(q, k, v, log_f, log_i, C0, n0, m0)
    return tuple(t.clone(memory_format=torch.contiguous_format) for t in outputs)  # type: ignore[return-value]


@mlstm_parallel.register_fake
def _(q, k, v, log_f, log_i, C0, n0, m0):
    return tuple(t.new_empty(t.shape) for t in (v, C0, n0, m0))


@torch.library.custom_op("lstmlab::mlstm_parallel_backward", mutates_args=())
def mlstm_parallel_backward(
    grads: list[Tensor], inputs: list[Tensor]
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The gradients of :func:`mlstm_parallel`'s eight inputs, given those of its four outputs:
    the forward recomputed, then its vector-Jacobian product."""
    vjp = torch.func.vjp(_chunkwise, *inputs)[1]
    return tuple(g.clone(memory_format=torch.contiguous_format) for g in vjp(tuple(grads)))


@mlstm_parallel_backward.register_fake
def _(grads, inputs):
    return tuple(t.new_empty(t.shape) for t in inputs)


def _save(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _backward(ctx, *grads):
    first_derivative_only()
    inputs = ctx.saved_tensors
    _, _, v, _, _, C0, n0, m0 = inputs  # shaped as the outputs h̃, C, n, m
    full = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, (v, C0, n0, m0))]
    return mlstm_parallel_backward(full, list(inputs))


mlstm_parallel.register_autograd(_backward, setup_context=_save)


@readable_unless()  # regularisers: the readable loop
def mlstm_sequence(
    cell: MLSTMCell,
    x: Tensor,
    state: tuple[Tensor, ...],
    lengths: Tensor | None,
    reverse: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run an mLSTM cell over ``x`` (T, B, I) like :func:`lstmlab.nn.recurrent.run`: the
    output (T, B, H) and the final state (C, n, m)."""
    steps, batch = x.shape[:2]
    heads, d = cell.num_heads, cell.head_size
    x = run_order(x, lengths, reverse)  # padding zeroed, then at the end of every sequence
    q, k, v, o, log_i, log_f = cell.project(x)  # (T, B, H) / (T, B, heads)
    if lengths is not None:  # f = 1, i = 0 past each length
        live = (torch.arange(steps, device=x.device).unsqueeze(1) < lengths).unsqueeze(-1)
        log_f, log_i = torch.where(live, log_f, 0.0), torch.where(live, log_i, -torch.inf)
    C0, n0, m0 = state[0].view(batch, heads, d, d), state[1].view(batch, heads, d), state[2]
    heads_first = [t.view(steps, batch, heads, d).permute(1, 2, 0, 3) for t in (q, k, v)]
    h_tilde, C, n, m = mlstm_parallel(
        *heads_first, log_f.permute(1, 2, 0), log_i.permute(1, 2, 0), C0, n0, m0
    )
    h = torch.sigmoid(o) * h_tilde.permute(2, 0, 1, 3).flatten(-2)  # (T, B, H)
    return run_order(h, lengths, reverse), (C.flatten(1), n.flatten(1), m)


dispatch.register_sequence_op(
    MLSTMCell, second_derivatives_by_readable_loop(mlstm_sequence), accepts=runs_anywhere
)
