"""The LSTM family in Triton: ``lstmlab::lstm_forward`` and ``lstmlab::lstm_backward`` with every
switch of :class:`lstmlab.LSTMCell` (peepholes, CIFG, missing gates, NIAF/NOAF, FGR, projection)
and the regularisers (recurrent dropout, zoneout of h and c). Same arguments and outputs as the
C++ kernels (csrc/lstm.h), whose comments say what each output holds."""

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
    sigmoid,
    tanh,
    tile,
)


@triton.jit
def _gate(
    z_ptr, grec_ptr, w_ptr, c, zrow, arow, cols, inside, H,
    K: tl.constexpr, A: tl.constexpr, FGR: tl.constexpr, PEEP: tl.constexpr, ACC: tl.constexpr,
):  # fmt: skip
    """One sigmoid gate: σ(z_k [+ (a_{t-1} W_gg^T)_k] [+ w ⊙ c]); also returns z_k as read."""
    pre = tl.load(z_ptr + zrow + K * H, mask=inside, other=0.0).to(ACC)
    s = pre
    if FGR:
        s += tl.load(grec_ptr + arow + A * H, mask=inside, other=0.0).to(ACC)
    if PEEP:
        s += tl.load(w_ptr + cols, mask=cols < H, other=0.0).to(ACC) * c
    return sigmoid(s), pre


@triton.jit
def _forward_step(
    z_ptr,  # (B, nH): this step's x W_ih^T + b + h_{t-1} W_hh^T -> the gate activations
    grec_ptr,  # (B, sH): a_{t-1} W_gg^T [FGR]
    cp_ptr,  # (B, H): c_{t-1}
    ct_ptr,  # (B, H): the step's own c_t (cz[t] with zoneout on c, else cs[t+1])
    cn_ptr,  # (B, H): c_t after zoneout, held for ended rows (cs[t+1])
    kc_ptr,  # (B, H): zoneout keep weights for c [ZONE_C]
    m_ptr,  # (B, H): o ⊙ φ(c_t) -- ms[t] with projection, else h_t (hs[t+1])
    hp_ptr,  # (B, H): h_{t-1} [no projection]
    kh_ptr,  # (B, H): zoneout keep weights for h [ZONE_H, no projection]
    ap_ptr,  # (B, sH): a_{t-1} [FGR]
    an_ptr,  # (B, sH): a_t [FGR]
    wci_ptr, wcf_ptr, wco_ptr,  # (H,): peepholes
    len_ptr, t, B, H,
    I: tl.constexpr, F: tl.constexpr, G: tl.constexpr, O: tl.constexpr,
    AI: tl.constexpr, AF: tl.constexpr, AO: tl.constexpr, NG: tl.constexpr, NS: tl.constexpr,
    COUPLED: tl.constexpr, IN_ACT: tl.constexpr, OUT_ACT: tl.constexpr,
    PEEP_I: tl.constexpr, PEEP_F: tl.constexpr, PEEP_O: tl.constexpr,
    FGR: tl.constexpr, PROJ: tl.constexpr, ZONE_H: tl.constexpr, ZONE_C: tl.constexpr,
    HAS_LEN: tl.constexpr, ACC: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """One step of :meth:`LSTMCell.step` after the matmuls, on a BLOCK_B x BLOCK_H tile."""
    rows, cols, inside = tile(tl.program_id(0), tl.program_id(1), B, H, BLOCK_B, BLOCK_H)
    live = live_rows(len_ptr, rows, t, B, HAS_LEN)
    zrow = rows * (NG * H) + cols
    arow = rows * (NS * H) + cols
    hrow = rows * H + cols
    keep = inside & live
    cp = tl.load(cp_ptr + hrow, mask=inside, other=0.0).to(ACC)

    i = 1.0
    f = 1.0
    o = 1.0
    if I >= 0:  # i = σ(z_i [+ W_gg a] [+ w_ci ⊙ c_{t-1}])
        i, zi = _gate(z_ptr, grec_ptr, wci_ptr, cp, zrow, arow, cols, inside, H, I, AI, FGR,
                      PEEP_I, ACC)  # fmt: skip
        tl.store(z_ptr + zrow + I * H, tl.where(live, i, zi), mask=inside)
    if COUPLED:  # CIFG: forget exactly what is written
        f = 1.0 - i
    if F >= 0:  # f = σ(z_f [+ W_gg a] [+ w_cf ⊙ c_{t-1}])
        f, zf = _gate(z_ptr, grec_ptr, wcf_ptr, cp, zrow, arow, cols, inside, H, F, AF, FGR,
                      PEEP_F, ACC)  # fmt: skip
        tl.store(z_ptr + zrow + F * H, tl.where(live, f, zf), mask=inside)
    zg = tl.load(z_ptr + zrow + G * H, mask=inside, other=0.0).to(ACC)
    g = zg
    if IN_ACT:
        g = tanh(zg)
    tl.store(z_ptr + zrow + G * H, tl.where(live, g, zg), mask=inside)

    c = f * cp + i * g  # the conveyor belt: forget some, add some
    if ZONE_C:
        tl.store(ct_ptr + hrow, c, mask=keep)
        kc = tl.load(kc_ptr + hrow, mask=inside, other=0.0).to(ACC)
        tl.store(cn_ptr + hrow, tl.where(live, kc * cp + (1.0 - kc) * c, cp), mask=inside)
    else:
        tl.store(cn_ptr + hrow, tl.where(live, c, cp), mask=inside)

    if O >= 0:  # o = σ(z_o [+ W_gg a] [+ w_co ⊙ c_t])
        o, zo = _gate(z_ptr, grec_ptr, wco_ptr, c, zrow, arow, cols, inside, H, O, AO, FGR,
                      PEEP_O, ACC)  # fmt: skip
        tl.store(z_ptr + zrow + O * H, tl.where(live, o, zo), mask=inside)
    m = o * c
    if OUT_ACT:
        m = o * tanh(c)

    if PROJ:  # h_t = W_hr m_t follows (a matmul), then zoneout and the ended rows
        tl.store(m_ptr + hrow, tl.where(live, m, 0.0), mask=inside)
    else:
        hp = tl.load(hp_ptr + hrow, mask=inside, other=0.0).to(ACC)
        h = m
        if ZONE_H:
            kh = tl.load(kh_ptr + hrow, mask=inside, other=0.0).to(ACC)
            h = kh * hp + (1.0 - kh) * m
        tl.store(m_ptr + hrow, tl.where(live, h, hp), mask=inside)

    if FGR:  # a_t = [i, f, o] (the sigmoid gates present); ended rows keep a_{t-1}
        if I >= 0:
            ap = tl.load(ap_ptr + arow + AI * H, mask=inside, other=0.0)
            tl.store(an_ptr + arow + AI * H, tl.where(live, i, ap), mask=inside)
        if F >= 0:
            ap = tl.load(ap_ptr + arow + AF * H, mask=inside, other=0.0)
            tl.store(an_ptr + arow + AF * H, tl.where(live, f, ap), mask=inside)
        if O >= 0:
            ap = tl.load(ap_ptr + arow + AO * H, mask=inside, other=0.0)
            tl.store(an_ptr + arow + AO * H, tl.where(live, o, ap), mask=inside)


@triton.jit
def _zone_hold(
    h_ptr,  # (B, P): the projected h_t, in place -> after zoneout, held for ended rows
    hp_ptr,  # (B, P): h_{t-1}
    kh_ptr,  # (B, P): zoneout keep weights [ZONE_H]
    len_ptr, t, B, P,
    ZONE_H: tl.constexpr, HAS_LEN: tl.constexpr, ACC: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """After the projection: h_t = k ⊙ h_{t-1} + (1 - k) ⊙ h_t, and h_{t-1} for ended rows."""
    rows, cols, inside = tile(tl.program_id(0), tl.program_id(1), B, P, BLOCK_B, BLOCK_H)
    live = live_rows(len_ptr, rows, t, B, HAS_LEN)
    at = rows * P + cols
    h = tl.load(h_ptr + at, mask=inside, other=0.0).to(ACC)
    hp = tl.load(hp_ptr + at, mask=inside, other=0.0).to(ACC)
    if ZONE_H:
        kh = tl.load(kh_ptr + at, mask=inside, other=0.0).to(ACC)
        h = kh * hp + (1.0 - kh) * h
    tl.store(h_ptr + at, tl.where(live, h, hp), mask=inside)


@triton.jit
def _project_back(
    rec_ptr,  # (B, P): dz_{t+1} W_hh
    dht_ptr,  # (B, P): in dL/dh_{t+1}, out dL/dh_t (float32)
    g_ptr,  # (B, P): the output's gradient at t (grad_hs[t+1])
    dms_ptr,  # (B, P): out dL/d(projected h_t), zero for ended rows (dHs[t])
    mask_ptr, kh_ptr, khn_ptr,  # (B, P): dropout mask, keep_h[t], keep_h[t+1]
    len_ptr, t, T, B, P,
    DROP: tl.constexpr, ZONE_H: tl.constexpr, HAS_LEN: tl.constexpr, ACC: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """With a projection, before dm_t = dHs[t] W_hr: dL/dh_t and its share through W_hr."""
    rows, cols, inside = tile(tl.program_id(0), tl.program_id(1), B, P, BLOCK_B, BLOCK_H)
    live = live_rows(len_ptr, rows, t, B, HAS_LEN)
    live_n = live_rows(len_ptr, rows, t + 1, B, HAS_LEN)
    at = rows * P + cols
    nxt = has_next(rows, t, T)
    dht = dh_from_later(rec_ptr, dht_ptr, mask_ptr, khn_ptr, at, inside, nxt, live_n, DROP, ZONE_H,
                    ACC)  # fmt: skip
    dht += tl.load(g_ptr + at, mask=inside, other=0.0).to(ACC)
    tl.store(dht_ptr + at, dht, mask=inside)
    dm = dht
    if ZONE_H:
        dm = dht * (1.0 - tl.load(kh_ptr + at, mask=inside, other=0.0).to(ACC))
    tl.store(dms_ptr + at, tl.where(live, dm, 0.0), mask=inside)


@triton.jit
def _backward_step(
    dz_ptr,  # (B, nH): out dL/dz_t (dZ[t]); zero for ended rows
    dsig_ptr,  # (B, sH): out the sigmoid gates' dz, packed as a (dSig[t]) [FGR]
    z_ptr,  # (B, nH): the gate activations (acts[t])
    cp_ptr,  # (B, H): c_{t-1}
    cn_ptr,  # (B, H): the step's own c_t
    dm_ptr,  # (B, H): dL/dm_t given [PROJ]
    rec_ptr,  # (B, P = H): dz_{t+1} W_hh [no projection]
    dht_ptr,  # (B, P = H): in dL/dh_{t+1}, out dL/dh_t [no projection]
    g_ptr,  # (B, P = H): grad_hs[t+1] [no projection]
    mask_ptr, kh_ptr, khn_ptr,  # (B, H): dropout mask, keep_h[t], keep_h[t+1] [no projection]
    dc_ptr,  # (B, H): in dL/dc_t from later steps, out dL/dc_{t-1}
    kc_ptr,  # (B, H): keep_c[t] [ZONE_C]
    da_ptr,  # (B, sH): in dL/da_{t+1}, out dL/da_t [FGR]
    drec_ptr,  # (B, sH): dSig[t+1] W_gg [FGR]
    wci_ptr, wcf_ptr, wco_ptr,
    len_ptr, t, T, B, H,
    I: tl.constexpr, F: tl.constexpr, G: tl.constexpr, O: tl.constexpr,
    AI: tl.constexpr, AF: tl.constexpr, AO: tl.constexpr, NG: tl.constexpr, NS: tl.constexpr,
    COUPLED: tl.constexpr, IN_ACT: tl.constexpr, OUT_ACT: tl.constexpr,
    PEEP_I: tl.constexpr, PEEP_F: tl.constexpr, PEEP_O: tl.constexpr,
    FGR: tl.constexpr, PROJ: tl.constexpr, DROP: tl.constexpr, ZONE_H: tl.constexpr,
    ZONE_C: tl.constexpr, HAS_LEN: tl.constexpr, ACC: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """The derivatives of one step of :meth:`LSTMCell.step`, on a BLOCK_B x BLOCK_H tile."""
    rows, cols, inside = tile(tl.program_id(0), tl.program_id(1), B, H, BLOCK_B, BLOCK_H)
    live = live_rows(len_ptr, rows, t, B, HAS_LEN)
    live_n = live_rows(len_ptr, rows, t + 1, B, HAS_LEN)
    nxt = has_next(rows, t, T)
    zrow = rows * (NG * H) + cols
    arow = rows * (NS * H) + cols
    hrow = rows * H + cols

    if PROJ:
        dm = tl.load(dm_ptr + hrow, mask=inside, other=0.0).to(ACC)
    else:  # dL/dh_t, then the step's own share (zoneout gives k of it to h_{t-1})
        dht = dh_from_later(rec_ptr, dht_ptr, mask_ptr, khn_ptr, hrow, inside, nxt, live_n, DROP,
                        ZONE_H, ACC)  # fmt: skip
        dht += tl.load(g_ptr + hrow, mask=inside, other=0.0).to(ACC)
        tl.store(dht_ptr + hrow, dht, mask=inside)
        dm = dht
        if ZONE_H:
            dm = dht * (1.0 - tl.load(kh_ptr + hrow, mask=inside, other=0.0).to(ACC))
    if FGR:  # dL/da_t: through W_gg from step t+1, or all of dL/da_{t+1} for an ended row
        on = inside & nxt
        if I >= 0:
            dai = tl.load(da_ptr + arow + AI * H, mask=inside, other=0.0).to(ACC)
            r = tl.load(drec_ptr + arow + AI * H, mask=on, other=0.0).to(ACC)
            dai = tl.where(nxt & live_n, r, dai)
            tl.store(da_ptr + arow + AI * H, dai, mask=inside)
        if F >= 0:
            daf = tl.load(da_ptr + arow + AF * H, mask=inside, other=0.0).to(ACC)
            r = tl.load(drec_ptr + arow + AF * H, mask=on, other=0.0).to(ACC)
            daf = tl.where(nxt & live_n, r, daf)
            tl.store(da_ptr + arow + AF * H, daf, mask=inside)
        if O >= 0:
            dao = tl.load(da_ptr + arow + AO * H, mask=inside, other=0.0).to(ACC)
            r = tl.load(drec_ptr + arow + AO * H, mask=on, other=0.0).to(ACC)
            dao = tl.where(nxt & live_n, r, dao)
            tl.store(da_ptr + arow + AO * H, dao, mask=inside)

    cp = tl.load(cp_ptr + hrow, mask=inside, other=0.0).to(ACC)
    c = tl.load(cn_ptr + hrow, mask=inside, other=0.0).to(ACC)
    dc_in = tl.load(dc_ptr + hrow, mask=inside, other=0.0).to(ACC)
    dc = dc_in
    if ZONE_C:
        kc = tl.load(kc_ptr + hrow, mask=inside, other=0.0).to(ACC)
        dc = dc_in * (1.0 - kc)

    # Through h = o ⊙ φ(c_t): dc becomes all of dL/dc_t.
    phi = c
    dphi = 1.0
    if OUT_ACT:
        phi = tanh(c)
        dphi = 1.0 - phi * phi
    i = 1.0
    f = 1.0
    o = 1.0
    if I >= 0:
        i = tl.load(z_ptr + zrow + I * H, mask=inside, other=0.0).to(ACC)
    if F >= 0:
        f = tl.load(z_ptr + zrow + F * H, mask=inside, other=0.0).to(ACC)
    if O >= 0:
        o = tl.load(z_ptr + zrow + O * H, mask=inside, other=0.0).to(ACC)
    g = tl.load(z_ptr + zrow + G * H, mask=inside, other=0.0).to(ACC)
    dc = dc + dm * o * dphi
    if O >= 0:
        dzo = dm * phi
        if FGR:
            dzo += dao
        dzo = dzo * o * (1.0 - o)
        if PEEP_O:
            dc += dzo * tl.load(wco_ptr + cols, mask=cols < H, other=0.0).to(ACC)
        tl.store(dz_ptr + zrow + O * H, tl.where(live, dzo, 0.0), mask=inside)
        if FGR:
            tl.store(dsig_ptr + arow + AO * H, tl.where(live, dzo, 0.0), mask=inside)

    # Through c_t = f ⊙ c_{t-1} + i ⊙ g (f = 1 - i when coupled).
    dzg = dc * i
    if IN_ACT:
        dzg = dzg * (1.0 - g * g)
    tl.store(dz_ptr + zrow + G * H, tl.where(live, dzg, 0.0), mask=inside)
    dcp = dc * f
    if COUPLED:
        dcp = dc * (1.0 - i)
    if I >= 0:
        dzi = dc * g
        if COUPLED:
            dzi -= dc * cp
        if FGR:
            dzi += dai
        dzi = dzi * i * (1.0 - i)
        if PEEP_I:
            dcp += dzi * tl.load(wci_ptr + cols, mask=cols < H, other=0.0).to(ACC)
        tl.store(dz_ptr + zrow + I * H, tl.where(live, dzi, 0.0), mask=inside)
        if FGR:
            tl.store(dsig_ptr + arow + AI * H, tl.where(live, dzi, 0.0), mask=inside)
    if F >= 0:
        dzf = dc * cp
        if FGR:
            dzf += daf
        dzf = dzf * f * (1.0 - f)
        if PEEP_F:
            dcp += dzf * tl.load(wcf_ptr + cols, mask=cols < H, other=0.0).to(ACC)
        tl.store(dz_ptr + zrow + F * H, tl.where(live, dzf, 0.0), mask=inside)
        if FGR:
            tl.store(dsig_ptr + arow + AF * H, tl.where(live, dzf, 0.0), mask=inside)
    if ZONE_C:
        dcp += kc * dc_in
    tl.store(dc_ptr + hrow, tl.where(live, dcp, dc_in), mask=inside)


def _switches(layout: list[int], w_ci, w_cf, w_co, w_gg, w_hr, keep_h, keep_c, lengths, x):
    i, f, g, o, ai, af, ao, coupled, in_act, out_act = layout
    return {
        "I": i,
        "F": f,
        "G": g,
        "O": o,
        "AI": ai,
        "AF": af,
        "AO": ao,
        "NG": sum(k >= 0 for k in (i, f, g, o)),
        "NS": max(sum(k >= 0 for k in (ai, af, ao)), 1),
        "COUPLED": bool(coupled),
        "IN_ACT": bool(in_act),
        "OUT_ACT": bool(out_act),
        "PEEP_I": w_ci.numel() > 0,
        "PEEP_F": w_cf.numel() > 0,
        "PEEP_O": w_co.numel() > 0,
        "FGR": w_gg.numel() > 0,
        "PROJ": w_hr.numel() > 0,
        "ZONE_H": keep_h.numel() > 0,
        "ZONE_C": keep_c.numel() > 0,
        "HAS_LEN": lengths.numel() > 0,
        "ACC": compute_dtype(x),
    }


def lstm_forward(
    x: Tensor,
    w_ih: Tensor,
    bias: Tensor,
    w_hh: Tensor,
    w_hr: Tensor,
    w_ci: Tensor,
    w_cf: Tensor,
    w_co: Tensor,
    w_gg: Tensor,
    h0: Tensor,
    c0: Tensor,
    a0: Tensor,
    lengths: Tensor,
    layout: list[int],
    rec_mask: Tensor,
    keep_h: Tensor,
    keep_c: Tensor,
) -> tuple[Tensor, ...]:
    """Returns hs (T+1, B, P), cs (T+1, B, H), acts (T, B, nH), ms (T, B, H) [projection],
    as (T+1, B, sH) [FGR], cz (T, B, H) [zoneout on c]; (0,) where off."""
    T, B = x.shape[:2]
    n_h, P = w_hh.shape
    H = c0.shape[1]
    s = _switches(layout, w_ci, w_cf, w_co, w_gg, w_hr, keep_h, keep_c, lengths, x)
    proj, fgr, zone_h, zone_c = s["PROJ"], s["FGR"], s["ZONE_H"], s["ZONE_C"]
    none = x.new_empty(0)
    x2 = x.reshape(T * B, -1)
    # All steps' input halves in one matmul: (T*B, I) x (I, nH) -> (T, B, nH)
    acts = (torch.addmm(bias, x2, w_ih.t()) if bias.numel() else x2 @ w_ih.t()).view(T, B, n_h)
    hs, cs = x.new_empty(T + 1, B, P), x.new_empty(T + 1, B, H)
    hs[0], cs[0] = h0, c0
    ms = x.new_empty(T, B, H) if proj else none
    a_s = x.new_empty(T + 1, B, w_gg.shape[0]) if fgr else none
    if fgr:
        a_s[0] = a0
    cz = x.new_zeros(T, B, H) if zone_c else none
    mask = rec_mask.expand(B, P) if rec_mask.numel() else None
    kh = keep_h.expand(T, B, P).contiguous() if zone_h else none
    kc = keep_c.expand(T, B, H).contiguous() if zone_c else none
    grec = x.new_empty(B, w_gg.shape[0]) if fgr else none
    step, grid_h = blocks(B, H, x.device), grid(B, H, blocks(B, H, x.device))
    tail = blocks(B, P, x.device)
    w_hh_t = w_hh.t()
    for t in range(T):
        h_in = hs[t] * mask if mask is not None else hs[t]
        acts[t].addmm_(h_in, w_hh_t)  # z_t += (h_{t-1} ⊙ mask) W_hh^T: (B, P) x (P, nH)
        if fgr:
            torch.mm(a_s[t], w_gg.t(), out=grec)  # (B, sH) x (sH, sH)
        own_c = cz[t] if zone_c else cs[t + 1]
        # grid: (B / BLOCK_B, H / BLOCK_H) tiles; each reads every gate block of its columns
        _forward_step[grid_h](
            acts[t], pointer(grec, x), cs[t], own_c, cs[t + 1], pointer(kc, x)[t] if zone_c
            else x, ms[t] if proj else hs[t + 1], hs[t], pointer(kh, x)[t] if zone_h and not
            proj else x, a_s[t] if fgr else x, a_s[t + 1] if fgr else x, pointer(w_ci, x),
            pointer(w_cf, x), pointer(w_co, x), pointer(lengths, x), t, B, H, **s, **step,
        )  # fmt: skip
        if proj:
            torch.mm(ms[t], w_hr.t(), out=hs[t + 1])  # h_t = W_hr m_t: (B, H) x (H, P)
            _zone_hold[grid(B, P, tail)](
                hs[t + 1], hs[t], kh[t] if zone_h else x, pointer(lengths, x), t, B, P,
                ZONE_H=zone_h, HAS_LEN=s["HAS_LEN"], ACC=s["ACC"], **tail,
            )  # fmt: skip
    return hs, cs, acts, ms, a_s, cz


def lstm_backward(
    grad_hs: Tensor,
    grad_cn: Tensor,
    grad_an: Tensor,
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    w_hr: Tensor,
    w_ci: Tensor,
    w_cf: Tensor,
    w_co: Tensor,
    w_gg: Tensor,
    hs: Tensor,
    cs: Tensor,
    acts: Tensor,
    ms: Tensor,
    a_s: Tensor,
    lengths: Tensor,
    layout: list[int],
    rec_mask: Tensor,
    keep_h: Tensor,
    keep_c: Tensor,
    cz: Tensor,
) -> tuple[Tensor, ...]:
    """Gradients for x, w_ih, bias, w_hh, w_hr, w_ci, w_cf, w_co, w_gg, h0, c0, a0."""
    T, B = x.shape[:2]
    n_h, P = w_hh.shape
    H = cs.shape[2]
    s = _switches(layout, w_ci, w_cf, w_co, w_gg, w_hr, keep_h, keep_c, lengths, x)
    proj, fgr, zone_h, zone_c = s["PROJ"], s["FGR"], s["ZONE_H"], s["ZONE_C"]
    drop = rec_mask.numel() > 0
    s_h = w_gg.shape[0] if fgr else 0
    none, carry = x.new_empty(0), carry_dtype(x)
    grad_hs, acts, cs = grad_hs.contiguous(), acts.contiguous(), cs.contiguous()
    mask = rec_mask.expand(B, P).contiguous() if drop else x
    kh = keep_h.expand(T, B, P).contiguous() if zone_h else none
    kc = keep_c.expand(T, B, H).contiguous() if zone_c else none
    dz_all = x.new_zeros(T, B, n_h)
    d_sig = x.new_zeros(T, B, s_h) if fgr else none
    d_hs = x.new_empty(T, B, P) if proj else none
    dht = torch.zeros(B, P, dtype=carry, device=x.device)  # dL/dh_t, carried back
    dc = grad_cn.to(carry).contiguous().clone()  # dL/dc_t from later steps
    da = grad_an.to(carry).contiguous().clone() if fgr else x  # dL/da_t
    rec = x.new_zeros(B, P)  # dz_{t+1} W_hh
    drec = x.new_zeros(B, s_h) if fgr else x  # dSig[t+1] W_gg
    dm = x.new_empty(B, H) if proj else x
    step, tail = blocks(B, H, x.device), blocks(B, P, x.device)
    lens = pointer(lengths, x)
    for t in range(T - 1, -1, -1):
        kh_t = kh[t] if zone_h else x
        kh_n = kh[t + 1] if zone_h and t + 1 < T else x
        if proj:  # dL/dh_t and its share through W_hr, then dm_t = dHs[t] W_hr
            _project_back[grid(B, P, tail)](
                rec, dht, grad_hs[t + 1], d_hs[t], mask, kh_t, kh_n, lens, t, T, B, P,
                DROP=drop, ZONE_H=zone_h, HAS_LEN=s["HAS_LEN"], ACC=s["ACC"], **tail,
            )  # fmt: skip
            torch.mm(d_hs[t], w_hr, out=dm)  # (B, P) x (P, H)
        # grid: (B / BLOCK_B, H / BLOCK_H) tiles, every gate block of their columns
        _backward_step[grid(B, H, step)](
            dz_all[t], d_sig[t] if fgr else x, acts[t], cs[t], cz[t] if zone_c else cs[t + 1],
            dm, rec, dht, grad_hs[t + 1], mask, kh_t, kh_n, dc, kc[t] if zone_c else x, da,
            drec, pointer(w_ci, x), pointer(w_cf, x), pointer(w_co, x), lens, t, T, B, H,
            DROP=drop, **s, **step,
        )  # fmt: skip
        torch.mm(dz_all[t], w_hh, out=rec)  # dL/d(h_{t-1} ⊙ mask): (B, nH) x (nH, P)
        if fgr:
            torch.mm(d_sig[t], w_gg, out=drec)  # (B, sH) x (sH, sH)
    # dL/dh_0 and dL/da_0: what the sweep's last matmuls carry back (every row runs at t = 0).
    dh0 = rec.to(carry) * (mask if drop else 1.0)
    if zone_h:
        dh0 = dh0 + kh[0] * dht
    dh0 = (dh0 + grad_hs[0]).to(x.dtype)
    da0 = drec.to(x.dtype) if fgr else none
    # The weight gradients: one matmul each over all T*B rows.
    dz2 = dz_all.view(T * B, n_h)
    h_in = hs[:T] * rec_mask if drop else hs[:T]  # what W_hh saw at every step
    dx = (dz2 @ w_ih).view(x.shape)
    dw_ih = dz2.t() @ x.reshape(T * B, -1)
    dbias = dz2.sum(0)
    dw_hh = dz2.t() @ h_in.reshape(T * B, P)
    dw_hr = d_hs.view(T * B, P).t() @ ms.view(T * B, H) if proj else none
    c_own = cz if zone_c else cs[1:]  # the c_t the output gate saw

    def block(k: int) -> Tensor:
        return dz_all[:, :, k * H : (k + 1) * H]

    dw_ci = (block(s["I"]) * cs[:T]).sum((0, 1)) if w_ci.numel() else none
    dw_cf = (block(s["F"]) * cs[:T]).sum((0, 1)) if w_cf.numel() else none
    dw_co = (block(s["O"]) * c_own).sum((0, 1)) if w_co.numel() else none
    dw_gg = d_sig.view(T * B, s_h).t() @ a_s[:T].reshape(T * B, s_h) if fgr else none
    return (dx, dw_ih, dbias, dw_hh, dw_hr, dw_ci, dw_cf, dw_co, dw_gg, dh0, dc.to(x.dtype), da0)
