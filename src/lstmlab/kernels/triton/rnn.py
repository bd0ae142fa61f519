"""The Elman RNN in Triton: ``lstmlab::rnn_forward`` and ``lstmlab::rnn_backward`` (tanh or ReLU,
recurrent dropout, zoneout -- and so the clockwork RNN, which runs on this operator). Same
arguments and outputs as the C++ kernels (csrc/rnn.h)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from lstmlab.kernels.triton._common import (
    blocks,
    carry_dtype,
    compute_dtype,
    dh_from_later,
    grid,
    has_next,
    live_rows,
    pointer,
    tanh,
    tile,
)


@triton.jit
def _forward_step(
    own_ptr,  # (B, H): z_t + h_{t-1} W_hh^T -> the step's own h_t = φ(...) (hz[t] or hs[t+1])
    hn_ptr,  # (B, H): h_t after zoneout, held for ended rows (hs[t+1])
    hp_ptr,  # (B, H): h_{t-1}
    kh_ptr,  # (B, H): zoneout keep weights [ZONE_H]
    len_ptr, t, B, H,
    RELU: tl.constexpr, ZONE_H: tl.constexpr, HAS_LEN: tl.constexpr, ACC: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """One step of :meth:`RNNCell.step` after the matmul, on a BLOCK_B x BLOCK_H tile."""
    rows, cols, inside = tile(tl.program_id(0), tl.program_id(1), B, H, BLOCK_B, BLOCK_H)
    live = live_rows(len_ptr, rows, t, B, HAS_LEN)
    at = rows * H + cols
    pre = tl.load(own_ptr + at, mask=inside, other=0.0).to(ACC)
    if RELU:
        h = tl.maximum(pre, 0.0)
    else:
        h = tanh(pre)
    hp = tl.load(hp_ptr + at, mask=inside, other=0.0).to(ACC)
    if ZONE_H:
        tl.store(own_ptr + at, h, mask=inside)
        kh = tl.load(kh_ptr + at, mask=inside, other=0.0).to(ACC)
        h = kh * hp + (1.0 - kh) * h
    tl.store(hn_ptr + at, tl.where(live, h, hp), mask=inside)


@triton.jit
def _backward_step(
    dz_ptr,  # (B, H): out dL/dz_t (dZ[t]), zero for ended rows
    h_ptr,  # (B, H): the step's own h_t (hz[t] or hs[t+1])
    rec_ptr,  # (B, H): dz_{t+1} W_hh
    dht_ptr,  # (B, H): in dL/dh_{t+1}, out dL/dh_t
    g_ptr,  # (B, H): grad_hs[t+1]
    mask_ptr, kh_ptr, khn_ptr,  # (B, H): dropout mask, keep_h[t], keep_h[t+1]
    len_ptr, t, T, B, H,
    RELU: tl.constexpr, DROP: tl.constexpr, ZONE_H: tl.constexpr, HAS_LEN: tl.constexpr,
    ACC: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """The derivative of one step, on a BLOCK_B x BLOCK_H tile."""
    rows, cols, inside = tile(tl.program_id(0), tl.program_id(1), B, H, BLOCK_B, BLOCK_H)
    live = live_rows(len_ptr, rows, t, B, HAS_LEN)
    live_n = live_rows(len_ptr, rows, t + 1, B, HAS_LEN)
    at = rows * H + cols
    nxt = has_next(rows, t, T)
    dht = dh_from_later(rec_ptr, dht_ptr, mask_ptr, khn_ptr, at, inside, nxt, live_n, DROP,
                        ZONE_H, ACC)  # fmt: skip
    dht += tl.load(g_ptr + at, mask=inside, other=0.0).to(ACC)
    tl.store(dht_ptr + at, dht, mask=inside)
    d = dht
    if ZONE_H:  # the step's own h_t gets (1 - k) of the gradient
        d = dht * (1.0 - tl.load(kh_ptr + at, mask=inside, other=0.0).to(ACC))
    h = tl.load(h_ptr + at, mask=inside, other=0.0).to(ACC)
    if RELU:
        d = tl.where(h > 0.0, d, 0.0)
    else:
        d = d * (1.0 - h * h)
    tl.store(dz_ptr + at, tl.where(live, d, 0.0), mask=inside)


def rnn_forward(
    x: Tensor,
    w_ih: Tensor,
    bias: Tensor,
    w_hh: Tensor,
    h0: Tensor,
    lengths: Tensor,
    relu: bool,
    rec_mask: Tensor,
    keep_h: Tensor,
) -> tuple[Tensor, Tensor]:
    """Returns hs (T+1, B, H) and, with zoneout, hz (T, B, H): the step's own h_t."""
    T, B = x.shape[:2]
    H = w_hh.shape[0]
    zone_h = keep_h.numel() > 0
    x2 = x.reshape(T * B, -1)
    z = (torch.addmm(bias, x2, w_ih.t()) if bias.numel() else x2 @ w_ih.t()).view(T, B, H)
    hs = x.new_empty(T + 1, B, H)
    hs[0] = h0
    hz = x.new_empty(T, B, H) if zone_h else x.new_empty(0)
    mask = rec_mask.expand(B, H) if rec_mask.numel() else None
    kh = keep_h.expand(T, B, H).contiguous() if zone_h else None
    sizes = blocks(B, H, x.device)
    switches = dict(RELU=relu, ZONE_H=zone_h, HAS_LEN=lengths.numel() > 0, ACC=compute_dtype(x))
    w_hh_t = w_hh.t()
    for t in range(T):
        h_in = hs[t] * mask if mask is not None else hs[t]
        own = hz[t] if zone_h else hs[t + 1]
        torch.addmm(z[t], h_in, w_hh_t, out=own)  # z_t + (h_{t-1} ⊙ mask) W_hh^T
        # grid: (B / BLOCK_B, H / BLOCK_H) tiles
        _forward_step[grid(B, H, sizes)](
            own, hs[t + 1], hs[t], kh[t] if kh is not None else x, pointer(lengths, x), t, B, H,
            **switches, **sizes,
        )  # fmt: skip
    return hs, hz


def rnn_backward(
    grad_hs: Tensor,
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    has_bias: bool,
    hs: Tensor,
    lengths: Tensor,
    relu: bool,
    rec_mask: Tensor,
    keep_h: Tensor,
    hz: Tensor,
) -> tuple[Tensor, ...]:
    """Gradients for x, w_ih, bias, w_hh, h0."""
    T, B = x.shape[:2]
    H = w_hh.shape[0]
    drop, zone_h = rec_mask.numel() > 0, keep_h.numel() > 0
    grad_hs = grad_hs.contiguous()
    mask = rec_mask.expand(B, H).contiguous() if drop else x
    kh = keep_h.expand(T, B, H).contiguous() if zone_h else None
    h_own = hz.contiguous() if zone_h else hs[1:].contiguous()
    dz_all = x.new_empty(T, B, H)
    dht = torch.zeros(B, H, dtype=carry_dtype(x), device=x.device)
    rec = x.new_zeros(B, H)  # dz_{t+1} W_hh
    sizes = blocks(B, H, x.device)
    switches = dict(
        RELU=relu, DROP=drop, ZONE_H=zone_h, HAS_LEN=lengths.numel() > 0, ACC=compute_dtype(x)
    )
    for t in range(T - 1, -1, -1):
        kh_t = kh[t] if kh is not None else x
        kh_n = kh[t + 1] if kh is not None and t + 1 < T else x
        # grid: (B / BLOCK_B, H / BLOCK_H) tiles
        _backward_step[grid(B, H, sizes)](
            dz_all[t], h_own[t], rec, dht, grad_hs[t + 1], mask, kh_t, kh_n, pointer(lengths, x),
            t, T, B, H, **switches, **sizes,
        )  # fmt: skip
        torch.mm(dz_all[t], w_hh, out=rec)  # dL/d(h_{t-1} ⊙ mask): (B, H) x (H, H)
    dh0 = rec.to(dht.dtype) * (mask if drop else 1.0)  # every row runs at t = 0
    if kh is not None:
        dh0 = dh0 + kh[0] * dht
    dz2 = dz_all.view(T * B, H)
    h_in = hs[:T] * rec_mask if drop else hs[:T]  # what W_hh saw at every step
    return (
        (dz2 @ w_ih).view(x.shape),
        dz2.t() @ x.reshape(T * B, -1),
        dz2.sum(0) if has_bias else x.new_empty(0),
        dz2.t() @ h_in.reshape(T * B, H),
        (dh0 + grad_hs[0]).to(x.dtype),
    )
