"""The GRU in Triton: ``lstmlab::gru_forward`` and ``lstmlab::gru_backward`` in both forms of
:class:`lstmlab.GRUCell` (``reset_after`` True: one recurrent matmul per step; False: two
dependent ones, the second on r ⊙ h) with recurrent dropout and zoneout. Same arguments and
outputs as the C++ kernels (csrc/gru.h)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from lstmlab.kernels.triton._common import (
    blocks,
    carry_dtype,
    compute_dtype,
    grid,
    live_rows,
    pointer,
    sigmoid,
    tanh,
    tile,
)


@triton.jit
def _after_step(
    a_ptr,  # (B, 3H): x W_ih^T + b_ih -> the gates [r, z, n]
    q_ptr,  # (B, 3H): h_{t-1} W_hh^T + b_hh
    hp_ptr,  # (B, H): h_{t-1}
    aux_ptr,  # (B, H): out W_hn h_{t-1} + b_hn (aux[t])
    hn_ptr,  # (B, H): out h_t, held for ended rows (hs[t+1])
    kh_ptr,  # (B, H): zoneout keep weights [ZONE_H]
    len_ptr, t, B, H,
    ZONE_H: tl.constexpr, HAS_LEN: tl.constexpr, ACC: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """One step of :meth:`GRUCell.step` (reset after the matmul), on a BLOCK_B x BLOCK_H tile."""
    rows, cols, inside = tile(tl.program_id(0), tl.program_id(1), B, H, BLOCK_B, BLOCK_H)
    live = live_rows(len_ptr, rows, t, B, HAS_LEN)
    g3 = rows * (3 * H) + cols
    at = rows * H + cols
    xr = tl.load(a_ptr + g3, mask=inside, other=0.0).to(ACC)
    xz = tl.load(a_ptr + g3 + H, mask=inside, other=0.0).to(ACC)
    xn = tl.load(a_ptr + g3 + 2 * H, mask=inside, other=0.0).to(ACC)
    qn = tl.load(q_ptr + g3 + 2 * H, mask=inside, other=0.0).to(ACC)
    r = sigmoid(xr + tl.load(q_ptr + g3, mask=inside, other=0.0).to(ACC))
    z = sigmoid(xz + tl.load(q_ptr + g3 + H, mask=inside, other=0.0).to(ACC))
    n = tanh(xn + r * qn)  # n = tanh(x_n + r ⊙ (W_hn h + b_hn))
    hp = tl.load(hp_ptr + at, mask=inside, other=0.0).to(ACC)
    h = (1.0 - z) * n + z * hp
    if ZONE_H:
        kh = tl.load(kh_ptr + at, mask=inside, other=0.0).to(ACC)
        h = kh * hp + (1.0 - kh) * h
    tl.store(a_ptr + g3, tl.where(live, r, xr), mask=inside)
    tl.store(a_ptr + g3 + H, tl.where(live, z, xz), mask=inside)
    tl.store(a_ptr + g3 + 2 * H, tl.where(live, n, xn), mask=inside)
    tl.store(aux_ptr + at, qn, mask=inside)
    tl.store(hn_ptr + at, tl.where(live, h, hp), mask=inside)


@triton.jit
def _reset_step(
    a_ptr,  # (B, 3H): x W_ih^T + b_ih + b_hh -> r, z in the first 2H
    q_ptr,  # (B, 2H): h_{t-1} W_hr,z^T
    hi_ptr,  # (B, H): h_{t-1} as W_hh sees it (⊙ the dropout mask)
    aux_ptr,  # (B, H): out r ⊙ h (aux[t]), the second matmul's input
    B, H,
    ACC: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """Reset before the matmul, first half: r, z and r ⊙ h (every row)."""
    rows, cols, inside = tile(tl.program_id(0), tl.program_id(1), B, H, BLOCK_B, BLOCK_H)
    g3 = rows * (3 * H) + cols
    g2 = rows * (2 * H) + cols
    r = sigmoid(
        tl.load(a_ptr + g3, mask=inside, other=0.0).to(ACC)
        + tl.load(q_ptr + g2, mask=inside, other=0.0).to(ACC)
    )
    z = sigmoid(
        tl.load(a_ptr + g3 + H, mask=inside, other=0.0).to(ACC)
        + tl.load(q_ptr + g2 + H, mask=inside, other=0.0).to(ACC)
    )
    hi = tl.load(hi_ptr + rows * H + cols, mask=inside, other=0.0).to(ACC)
    tl.store(a_ptr + g3, r, mask=inside)
    tl.store(a_ptr + g3 + H, z, mask=inside)
    tl.store(aux_ptr + rows * H + cols, r * hi, mask=inside)


@triton.jit
def _candidate_step(
    a_ptr,  # (B, 3H): [r, z, x_n + b] -> n in the last H
    q_ptr,  # (B, H): (r ⊙ h) W_hn^T
    hp_ptr,  # (B, H): h_{t-1}
    hn_ptr,  # (B, H): out h_t, held for ended rows
    kh_ptr,  # (B, H) [ZONE_H]
    len_ptr, t, B, H,
    ZONE_H: tl.constexpr, HAS_LEN: tl.constexpr, ACC: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """Reset before the matmul, second half: n = tanh(x_n + W_hn (r ⊙ h) + b) and h_t."""
    rows, cols, inside = tile(tl.program_id(0), tl.program_id(1), B, H, BLOCK_B, BLOCK_H)
    live = live_rows(len_ptr, rows, t, B, HAS_LEN)
    g3 = rows * (3 * H) + cols
    at = rows * H + cols
    z = tl.load(a_ptr + g3 + H, mask=inside, other=0.0).to(ACC)
    xn = tl.load(a_ptr + g3 + 2 * H, mask=inside, other=0.0).to(ACC)
    n = tanh(xn + tl.load(q_ptr + at, mask=inside, other=0.0).to(ACC))
    hp = tl.load(hp_ptr + at, mask=inside, other=0.0).to(ACC)
    h = (1.0 - z) * n + z * hp
    if ZONE_H:
        kh = tl.load(kh_ptr + at, mask=inside, other=0.0).to(ACC)
        h = kh * hp + (1.0 - kh) * h
    tl.store(a_ptr + g3 + 2 * H, tl.where(live, n, xn), mask=inside)
    tl.store(hn_ptr + at, tl.where(live, h, hp), mask=inside)


@triton.jit
def _step_gradient(
    db_ptr, rec_ptr, mask_ptr, g_ptr, kh_ptr, at, inside,
    DROP: tl.constexpr, ZONE_H: tl.constexpr, ACC: tl.constexpr,
):  # fmt: skip
    """dL/dh_t (all of it: the part outside the later step's matmul ``db``, the matmul's share
    ``rec`` ⊙ mask, the output's gradient ``g``) and the step's own share (1 - k) of it."""
    rec = tl.load(rec_ptr + at, mask=inside, other=0.0).to(ACC)
    if DROP:
        rec = rec * tl.load(mask_ptr + at, mask=inside, other=0.0).to(ACC)
    dht = (
        tl.load(db_ptr + at, mask=inside, other=0.0).to(ACC)
        + rec
        + tl.load(g_ptr + at, mask=inside, other=0.0).to(ACC)
    )
    gb = dht
    if ZONE_H:
        gb = dht * (1.0 - tl.load(kh_ptr + at, mask=inside, other=0.0).to(ACC))
    return dht, gb


@triton.jit
def _after_backward(
    dx_ptr,  # (B, 3H): out dL/d(x W_ih^T + b_ih) (dX[t])
    dq_ptr,  # (B, 3H): out dL/d(h W_hh^T + b_hh) (dQ[t])
    a_ptr,  # (B, 3H): r, z, n
    hp_ptr,  # (B, H): h_{t-1}
    aux_ptr,  # (B, H): W_hn h_{t-1} + b_hn
    db_ptr,  # (B, H): in/out dL/dh outside the matmul (of h_t in, of h_{t-1} out)
    rec_ptr,  # (B, H): dQ[t+1] W_hh (zeros at the last step)
    g_ptr, mask_ptr, kh_ptr,  # (B, H): grad_hs[t+1], dropout mask, keep_h[t]
    len_ptr, t, B, H,
    DROP: tl.constexpr, ZONE_H: tl.constexpr, HAS_LEN: tl.constexpr, ACC: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """The derivatives of one reset-after step, on a BLOCK_B x BLOCK_H tile."""
    rows, cols, inside = tile(tl.program_id(0), tl.program_id(1), B, H, BLOCK_B, BLOCK_H)
    live = live_rows(len_ptr, rows, t, B, HAS_LEN)
    g3 = rows * (3 * H) + cols
    at = rows * H + cols
    dht, gb = _step_gradient(db_ptr, rec_ptr, mask_ptr, g_ptr, kh_ptr, at, inside, DROP, ZONE_H,
                             ACC)  # fmt: skip
    r = tl.load(a_ptr + g3, mask=inside, other=0.0).to(ACC)
    z = tl.load(a_ptr + g3 + H, mask=inside, other=0.0).to(ACC)
    n = tl.load(a_ptr + g3 + 2 * H, mask=inside, other=0.0).to(ACC)
    hp = tl.load(hp_ptr + at, mask=inside, other=0.0).to(ACC)
    hq = tl.load(aux_ptr + at, mask=inside, other=0.0).to(ACC)
    dn = gb * (1.0 - z) * (1.0 - n * n)
    dz = gb * (hp - n) * z * (1.0 - z)
    dr = dn * hq * r * (1.0 - r)
    db = gb * z
    if ZONE_H:
        db += tl.load(kh_ptr + at, mask=inside, other=0.0).to(ACC) * dht
    tl.store(dx_ptr + g3, tl.where(live, dr, 0.0), mask=inside)
    tl.store(dx_ptr + g3 + H, tl.where(live, dz, 0.0), mask=inside)
    tl.store(dx_ptr + g3 + 2 * H, tl.where(live, dn, 0.0), mask=inside)
    tl.store(dq_ptr + g3, tl.where(live, dr, 0.0), mask=inside)
    tl.store(dq_ptr + g3 + H, tl.where(live, dz, 0.0), mask=inside)
    tl.store(dq_ptr + g3 + 2 * H, tl.where(live, dn * r, 0.0), mask=inside)
    tl.store(db_ptr + at, tl.where(live, db, dht), mask=inside)


@triton.jit
def _candidate_backward(
    dx_ptr,  # (B, 3H): out dz, dn (dX[t])
    a_ptr, hp_ptr,  # r, z, n; h_{t-1}
    dht_ptr,  # (B, H): out dL/dh_t
    db_ptr, rec_ptr, g_ptr, mask_ptr, kh_ptr,  # as in _after_backward
    len_ptr, t, B, H,
    DROP: tl.constexpr, ZONE_H: tl.constexpr, HAS_LEN: tl.constexpr, ACC: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """Reset before, first half of a step's derivatives: dL/dh_t, then dz and dn."""
    rows, cols, inside = tile(tl.program_id(0), tl.program_id(1), B, H, BLOCK_B, BLOCK_H)
    live = live_rows(len_ptr, rows, t, B, HAS_LEN)
    g3 = rows * (3 * H) + cols
    at = rows * H + cols
    dht, gb = _step_gradient(db_ptr, rec_ptr, mask_ptr, g_ptr, kh_ptr, at, inside, DROP, ZONE_H,
                             ACC)  # fmt: skip
    tl.store(dht_ptr + at, dht, mask=inside)
    z = tl.load(a_ptr + g3 + H, mask=inside, other=0.0).to(ACC)
    n = tl.load(a_ptr + g3 + 2 * H, mask=inside, other=0.0).to(ACC)
    hp = tl.load(hp_ptr + at, mask=inside, other=0.0).to(ACC)
    tl.store(dx_ptr + g3 + H, tl.where(live, gb * (hp - n) * z * (1.0 - z), 0.0), mask=inside)
    tl.store(dx_ptr + g3 + 2 * H, tl.where(live, gb * (1.0 - z) * (1.0 - n * n), 0.0),
             mask=inside)  # fmt: skip


@triton.jit
def _reset_backward(
    dx_ptr,  # (B, 3H): out dr (dX[t])
    a_ptr, hp_ptr,  # r, z, n; h_{t-1}
    q_ptr,  # (B, H): dL/d(r ⊙ h) = dn W_hn
    dht_ptr,  # (B, H): dL/dh_t
    db_ptr,  # (B, H): out dL/dh_{t-1} outside the matmul of [r, z]
    mask_ptr, kh_ptr,
    len_ptr, t, B, H,
    DROP: tl.constexpr, ZONE_H: tl.constexpr, HAS_LEN: tl.constexpr, ACC: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """Reset before, second half: dr and the gradient that reaches h_{t-1} outside W_hr,z."""
    rows, cols, inside = tile(tl.program_id(0), tl.program_id(1), B, H, BLOCK_B, BLOCK_H)
    live = live_rows(len_ptr, rows, t, B, HAS_LEN)
    g3 = rows * (3 * H) + cols
    at = rows * H + cols
    dht = tl.load(dht_ptr + at, mask=inside, other=0.0).to(ACC)
    gb = dht
    if ZONE_H:
        kh = tl.load(kh_ptr + at, mask=inside, other=0.0).to(ACC)
        gb = dht * (1.0 - kh)
    r = tl.load(a_ptr + g3, mask=inside, other=0.0).to(ACC)
    z = tl.load(a_ptr + g3 + H, mask=inside, other=0.0).to(ACC)
    hp = tl.load(hp_ptr + at, mask=inside, other=0.0).to(ACC)
    q = tl.load(q_ptr + at, mask=inside, other=0.0).to(ACC)
    m = 1.0
    if DROP:  # r ⊙ (h ⊙ mask) met W_hn
        m = tl.load(mask_ptr + at, mask=inside, other=0.0).to(ACC)
    dr = q * hp * m * r * (1.0 - r)
    db = gb * z + q * r * m
    if ZONE_H:
        db += kh * dht
    tl.store(dx_ptr + g3, tl.where(live, dr, 0.0), mask=inside)
    tl.store(db_ptr + at, tl.where(live, db, dht), mask=inside)


def gru_forward(
    x: Tensor,
    w_ih: Tensor,
    b_ih: Tensor,
    w_hh: Tensor,
    b_hh: Tensor,
    h0: Tensor,
    lengths: Tensor,
    reset_after: bool,
    rec_mask: Tensor,
    keep_h: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """Returns hs (T+1, B, H), acts (T, B, 3H) = [r, z, n], aux (T, B, H): W_hn h + b_hn
    (reset_after) or r ⊙ h (reset before)."""
    T, B = x.shape[:2]
    H = w_hh.shape[1]
    zone_h = keep_h.numel() > 0
    x2 = x.reshape(T * B, -1)
    # Reset before the matmul: every bias is outside the gates' products, so both fold in here.
    b = b_ih if reset_after or not b_ih.numel() else b_ih + b_hh
    acts = (torch.addmm(b, x2, w_ih.t()) if b.numel() else x2 @ w_ih.t()).view(T, B, 3 * H)
    hs = x.new_empty(T + 1, B, H)
    hs[0] = h0
    aux = x.new_empty(T, B, H)
    mask = rec_mask.expand(B, H) if rec_mask.numel() else None
    kh = keep_h.expand(T, B, H).contiguous() if zone_h else None
    q = x.new_empty(B, 3 * H if reset_after else 2 * H)
    qn = x.new_empty(B, H)
    sizes = blocks(B, H, x.device)
    tiles = grid(B, H, sizes)
    common = dict(ZONE_H=zone_h, HAS_LEN=lengths.numel() > 0, ACC=compute_dtype(x), **sizes)
    lens = pointer(lengths, x)
    w_rz_t, w_n_t = w_hh[: 2 * H].t(), w_hh[2 * H :].t()
    for t in range(T):
        h_in = hs[t] * mask if mask is not None else hs[t]  # what W_hh sees
        kh_t = kh[t] if kh is not None else x
        if reset_after:
            if b_hh.numel():
                torch.addmm(b_hh, h_in, w_hh.t(), out=q)  # (B, H) x (H, 3H)
            else:
                torch.mm(h_in, w_hh.t(), out=q)
            # grid: (B / BLOCK_B, H / BLOCK_H) tiles, all three gate blocks of their columns
            _after_step[tiles](acts[t], q, hs[t], aux[t], hs[t + 1], kh_t, lens, t, B, H, **common)
        else:
            torch.mm(h_in, w_rz_t, out=q)  # [r, z] from h: (B, H) x (H, 2H)
            _reset_step[tiles](acts[t], q, h_in, aux[t], B, H, ACC=common["ACC"], **sizes)
            torch.mm(aux[t], w_n_t, out=qn)  # (r ⊙ h) W_hn^T: (B, H) x (H, H)
            _candidate_step[tiles](acts[t], qn, hs[t], hs[t + 1], kh_t, lens, t, B, H, **common)
    return hs, acts, aux


def gru_backward(
    grad_hs: Tensor,
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    has_bias: bool,
    hs: Tensor,
    acts: Tensor,
    aux: Tensor,
    lengths: Tensor,
    reset_after: bool,
    rec_mask: Tensor,
    keep_h: Tensor,
) -> tuple[Tensor, ...]:
    """Gradients for x, w_ih, b_ih, w_hh, b_hh, h0."""
    T, B = x.shape[:2]
    H = w_hh.shape[1]
    drop, zone_h = rec_mask.numel() > 0, keep_h.numel() > 0
    grad_hs, acts, aux = grad_hs.contiguous(), acts.contiguous(), aux.contiguous()
    mask = rec_mask.expand(B, H).contiguous() if drop else x
    kh = keep_h.expand(T, B, H).contiguous() if zone_h else None
    d_x = x.new_zeros(T, B, 3 * H)  # dL/d(x W_ih^T + b_ih), per step
    d_q = x.new_zeros(T, B, 3 * H) if reset_after else None  # dL/d(h W_hh^T + b_hh)
    carry = carry_dtype(x)
    db = torch.zeros(B, H, dtype=carry, device=x.device)  # dL/dh outside the matmuls
    dht = torch.zeros(B, H, dtype=carry, device=x.device)
    rec = x.new_zeros(B, H)  # the later step's matmul share of dL/dh (⊙ mask in the kernel)
    q = x.new_empty(B, H)
    sizes = blocks(B, H, x.device)
    tiles = grid(B, H, sizes)
    common = dict(
        DROP=drop, ZONE_H=zone_h, HAS_LEN=lengths.numel() > 0, ACC=compute_dtype(x), **sizes
    )
    lens = pointer(lengths, x)
    for t in range(T - 1, -1, -1):
        kh_t = kh[t] if kh is not None else x
        g = grad_hs[t + 1]
        if reset_after and d_q is not None:
            # grid: (B / BLOCK_B, H / BLOCK_H) tiles, all three gate blocks of their columns
            _after_backward[tiles](
                d_x[t], d_q[t], acts[t], hs[t], aux[t], db, rec, g, mask, kh_t, lens, t, B, H,
                **common,
            )  # fmt: skip
            torch.mm(d_q[t], w_hh, out=rec)  # dL/d(h_{t-1} ⊙ mask): (B, 3H) x (3H, H)
        else:
            _candidate_backward[tiles](
                d_x[t], acts[t], hs[t], dht, db, rec, g, mask, kh_t, lens, t, B, H, **common
            )
            torch.mm(d_x[t, :, 2 * H :], w_hh[2 * H :], out=q)  # dL/d(r ⊙ h): (B, H) x (H, H)
            _reset_backward[tiles](
                d_x[t], acts[t], hs[t], q, dht, db, mask, kh_t, lens, t, B, H, **common
            )
            torch.mm(d_x[t, :, : 2 * H], w_hh[: 2 * H], out=rec)  # (B, 2H) x (2H, H)
    dh0 = db + rec.to(carry) * (mask if drop else 1.0) + grad_hs[0]
    dx2 = d_x.view(T * B, 3 * H)
    h_in = hs[:T] * rec_mask if drop else hs[:T]  # what W_hh saw at every step
    h2 = h_in.reshape(T * B, H)
    none = x.new_empty(0)
    db_ih = dx2.sum(0) if has_bias else none
    if reset_after and d_q is not None:
        dq2 = d_q.view(T * B, 3 * H)
        dw_hh = dq2.t() @ h2
        db_hh = dq2.sum(0) if has_bias else none
    else:
        dw_hh = torch.cat([dx2[:, : 2 * H].t() @ h2, dx2[:, 2 * H :].t() @ aux.view(T * B, H)])
        db_hh = db_ih.clone() if has_bias else none  # the biases were folded
    return (
        (dx2 @ w_ih).view(x.shape),
        dx2.t() @ x.reshape(T * B, -1),
        db_ih,
        dw_hh,
        db_hh,
        dh0.to(x.dtype),
    )
