"""The sLSTM's training step (forward + backward) and inference: lstmlab's fused operator, the
readable loop, torch.nn.LSTM at the same hidden size, and the ``xlstm`` package's sLSTM cell
(vanilla backend, with its input projection as an ``nn.Linear``) where it is importable.

python benchmarks/slstm.py [--shapes 32x128x128,32x128x256] [--threads 1,2] [--heads 4]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

import lstmlab
from lstmlab import kernels


@dataclass
class Settings:
    shapes: list[tuple[int, int, int]]  # (B, T, H), input size = H
    threads: list[int]
    heads: int
    repeats: int


def parse() -> Settings:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", default="32x128x128,32x128x256", help="BxTxH, comma-separated")
    p.add_argument("--threads", default="1,2", help="torch threads, comma-separated")
    p.add_argument("--heads", type=int, default=4, help="sLSTM heads")
    p.add_argument("--repeats", type=int, default=5, help="timed runs (the median is printed)")
    a = p.parse_args()
    shapes = [tuple(int(v) for v in s.split("x")) for s in a.shapes.split(",")]
    threads = [int(t) for t in a.threads.split(",")]
    return Settings(shapes, threads, a.heads, a.repeats)  # type: ignore[arg-type]


def xlstm_cell(hidden: int, heads: int) -> Callable[[torch.Tensor], torch.Tensor] | str:
    """The xlstm package's sLSTM cell (vanilla backend) behind an input projection, or why not."""
    try:
        from xlstm.blocks.slstm.cell import sLSTMCell, sLSTMCellConfig  # type: ignore[import-not-found]
    except Exception as error:  # not installed, or a dependency missing
        return f"xlstm not importable ({type(error).__name__}: {error})"
    config = sLSTMCellConfig(
        hidden_size=hidden,
        num_heads=heads,
        backend="vanilla",
        dtype="float32",
        enable_automatic_mixed_precision=False,
    )
    cell = sLSTMCell(config)
    project = nn.Linear(hidden, 4 * hidden)

    def forward(x: torch.Tensor) -> torch.Tensor:  # x (B, T, H) batch-first
        return cell(project(x))[0]

    forward.parameters = lambda: [*cell.parameters(), *project.parameters()]  # type: ignore[attr-defined]
    return forward


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm up (first-call allocations, kernel build)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e3


def train_and_infer(forward, params, x: torch.Tensor, repeats: int, readable: bool = False):
    """Milliseconds of a training step (forward, backward of sum of squares) and of inference."""
    ctx = kernels.disabled if readable else nullcontext

    def train() -> None:
        with ctx():
            loss = forward(x).square().sum()
            loss.backward()
        for p in params():
            p.grad = None

    def infer() -> None:
        with ctx(), torch.no_grad():
            forward(x)

    return timed(train, repeats), timed(infer, repeats)


def main() -> None:
    s = parse()
    print(f"torch {torch.__version__}, lstmlab kernels built: {kernels.extension() is not None}")
    print("ms per call (median); train = forward + backward; input size = hidden size")
    header = f"{'B':>3} {'T':>4} {'H':>4} {'thr':>3}  {'path':<28} {'train':>9} {'infer':>9}"
    notes: set[str] = set()
    print(header)
    for threads in s.threads:
        torch.set_num_threads(threads)
        for B, T, H in s.shapes:
            torch.manual_seed(0)
            x = torch.randn(B, T, H)
            slstm = lstmlab.SLSTM(H, H, batch_first=True, num_heads=s.heads)
            one_head = lstmlab.SLSTM(H, H, batch_first=True)
            lstm = nn.LSTM(H, H, batch_first=True)
            rows = [
                (f"lstmlab sLSTM fused, {s.heads} heads", slstm, False),
                (f"lstmlab sLSTM readable, {s.heads} h", slstm, True),
                ("lstmlab sLSTM fused, 1 head", one_head, False),
                ("torch.nn.LSTM", lstm, False),
            ]
            results = [
                (name, *train_and_infer(lambda v, m=m: m(v)[0], m.parameters, x, s.repeats, r))
                for name, m, r in rows
            ]
            theirs = xlstm_cell(H, s.heads)
            if isinstance(theirs, str):
                notes.add(theirs)
            else:
                name = f"xlstm sLSTM vanilla, {s.heads} h"
                results.append((name, *train_and_infer(theirs, theirs.parameters, x, s.repeats)))  # type: ignore[attr-defined]
            for name, train, infer in results:
                print(f"{B:>3} {T:>4} {H:>4} {threads:>3}  {name:<28} {train:>9.1f} {infer:>9.1f}")
    for note in sorted(notes):
        print(f"note: {note}; its column is skipped")


if __name__ == "__main__":
    main()
