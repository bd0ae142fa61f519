"""Pieces shared by the Triton kernels: activations, the block table, the launch grid."""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor

from lstmlab.kernels.backend import interpreted

# Whether the kernels below were made for Triton's interpreter (CPU tensors): Triton decides when
# a kernel is defined, so TRITON_INTERPRET=1 must be set before this package is first imported.
INTERPRETED = interpreted()

# Block shapes of the pointwise kernels by hidden size: (widest H, BLOCK_H, rows per program,
# warps). A program covers BLOCK_B rows x BLOCK_H columns of every gate block; the table keeps a
# program near 2-4 K elements per gate. Under the interpreter (CPU tensors) one program covers the
# whole step, since the interpreter runs programs one after another.
BLOCKS = (
    (64, 64, 32, 4),
    (128, 128, 16, 4),
    (256, 256, 8, 4),
    (1 << 62, 512, 4, 8),
)


def blocks(rows: int, width: int, device: torch.device) -> dict[str, int]:
    """The constexpr block sizes (and warps) for a step of ``rows`` x ``width``."""
    if device.type != "cuda":
        return {
            "BLOCK_B": triton.next_power_of_2(max(rows, 1)),
            "BLOCK_H": triton.next_power_of_2(max(width, 1)),
        }
    for widest, block_h, block_b, warps in BLOCKS:
        if width <= widest:
            block_h = min(block_h, triton.next_power_of_2(width))
            block_b = min(block_b, triton.next_power_of_2(max(rows, 1)))
            return {"BLOCK_B": block_b, "BLOCK_H": block_h, "num_warps": warps}
    raise AssertionError("unreachable: the last row of BLOCKS takes any width")


def grid(rows: int, width: int, sizes: dict[str, int]) -> tuple[int, int]:
    """The launch grid for :func:`blocks`: (row blocks, column blocks)."""
    return triton.cdiv(rows, sizes["BLOCK_B"]), triton.cdiv(width, sizes["BLOCK_H"])


def pointer(t: Tensor | None, stand_in: Tensor) -> Tensor:
    """``t``, or ``stand_in`` (any real tensor, never read) where the part is switched off: a
    kernel's pointer argument for a part its constexpr switches leave out."""
    return stand_in if t is None or t.numel() == 0 else t.contiguous()


def compute_dtype(t: Tensor) -> Any:
    """What the pointwise kernels compute in: float64 for float64, float32 otherwise."""
    return tl.float64 if t.dtype == torch.float64 else tl.float32


def carry_dtype(t: Tensor) -> torch.dtype:
    """The dtype of the gradients carried between steps: float64 for float64, float32 else."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


@triton.jit
def sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def tanh(x):
    # 1 - 2 / (e^{2x} + 1): exact at both tails (e^{2x} -> inf gives 1, -> 0 gives -1)
    return 1.0 - 2.0 / (tl.exp(2.0 * x) + 1.0)


@triton.jit
def tile(pid_b, pid_h, B, H, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    """This program's rows (BLOCK_B, 1), columns (1, BLOCK_H) and their in-range mask."""
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)[:, None]
    cols = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)[None, :]
    return rows, cols, (rows < B) & (cols < H)


@triton.jit
def live_rows(len_ptr, rows, t, B, HAS_LEN: tl.constexpr):
    """(BLOCK_B, 1) bool: the rows whose sequence still runs at step ``t``."""
    if HAS_LEN:
        n = tl.load(len_ptr + rows, mask=rows < B, other=0)
        return t < n
    else:
        return rows >= 0


@triton.jit
def has_next(rows, t, T):
    """(BLOCK_B, 1) bool: whether step t+1 exists. A tile rather than a scalar, because
    Triton's interpreter refuses a scalar boolean and'ed into a load mask."""
    return rows * 0 + t + 1 < T


@triton.jit
def dh_from_later(
    rec_ptr, dht_ptr, mask_ptr, khn_ptr, at, inside, nxt, live_n,
    DROP: tl.constexpr, ZONE_H: tl.constexpr, ACC: tl.constexpr,
):  # fmt: skip
    """dL/dh_t from the steps after t: the matmul's share ``rec`` = dz_{t+1} W_hh (⊙ the
    dropout mask) plus zoneout's k_{t+1} ⊙ dL/dh_{t+1}; for a row ended at t+1 all of
    dL/dh_{t+1} (its state was held); 0 at the last step (``nxt`` false)."""
    on = inside & nxt
    dht_n = tl.load(dht_ptr + at, mask=on, other=0.0).to(ACC)
    rec = tl.load(rec_ptr + at, mask=on, other=0.0).to(ACC)
    if DROP:
        rec = rec * tl.load(mask_ptr + at, mask=on, other=0.0).to(ACC)
    if ZONE_H:
        rec += tl.load(khn_ptr + at, mask=on, other=0.0).to(ACC) * dht_n
    return tl.where(nxt & live_n, rec, dht_n)
