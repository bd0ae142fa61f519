"""The parallel forms against the step loop: minGRU and minLSTM (log-space scan), mLSTM (parallel
form), each as its layer on the default path and inside ``lstmlab.kernels.disabled()`` (the
readable loop, one step at a time), with torch.nn.LSTM at the same size for scale.

    python benchmarks/parallel_scan.py                     # T=1024, B=8, I=H=64
    python benchmarks/parallel_scan.py --steps 256 --repeats 5

Prints one row per layer and path: milliseconds for a training step (forward + backward) and
for a forward pass without gradients, and the step loop's time over the parallel form's.
``--check`` asserts the parallel form is at least ``--check`` times faster in training.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

import lstmlab
from lstmlab import kernels


@dataclass
class Settings:
    steps: int
    batch: int
    size: int
    heads: int
    repeats: int
    check: float


def parse() -> Settings:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1024)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=64, help="input and hidden size")
    p.add_argument("--heads", type=int, default=4, help="mLSTM heads")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--check", type=float, default=0.0, help="least training speed-up asserted")
    return Settings(**vars(p.parse_args()))


def best_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def timings(layer: torch.nn.Module, x: torch.Tensor, repeats: int) -> tuple[float, float]:
    def train() -> None:
        out, _ = layer(x)
        out.square().mean().backward()

    def forward() -> None:
        with torch.no_grad():
            layer(x)

    return best_ms(train, repeats), best_ms(forward, repeats)


s = parse()
torch.manual_seed(0)
x = torch.randn(s.steps, s.batch, s.size, requires_grad=True)
print(
    f"T={s.steps} B={s.batch} I=H={s.size} (mLSTM: {s.heads} heads), "
    f"{torch.get_num_threads()} threads, best of {s.repeats}"
)
print(f"{'layer':22} {'train ms':>9} {'forward ms':>11} {'train / nn.LSTM':>16}  loop / parallel")
lstm_train, lstm_forward = timings(torch.nn.LSTM(s.size, s.size), x, s.repeats)
print(f"{'torch.nn.LSTM':22} {lstm_train:9.1f} {lstm_forward:11.1f} {1.0:16.2f}")
layers = {
    "minGRU": lstmlab.MinGRU(s.size, s.size),
    "minLSTM": lstmlab.MinLSTM(s.size, s.size),
    "mLSTM": lstmlab.MLSTM(s.size, s.size, num_heads=s.heads),
}
speedups = {}
for name, layer in layers.items():
    rows = {}
    for path, context in (("parallel", contextlib.nullcontext), ("step loop", kernels.disabled)):
        with context():
            rows[path] = timings(layer, x, s.repeats)
    (fast_train, fast_forward), (slow_train, slow_forward) = rows["parallel"], rows["step loop"]
    speedups[name] = slow_train / fast_train
    for path, (train, forward) in rows.items():
        print(f"{name + ' ' + path:22} {train:9.1f} {forward:11.1f} {train / lstm_train:16.2f}")
    print(
        f"{'':22} {'':9} {'':11} {'':16}  train {slow_train / fast_train:.1f}x, "
        f"forward {slow_forward / fast_forward:.1f}x"
    )
if s.check:
    slow = {n: round(v, 1) for n, v in speedups.items() if v < s.check}
    assert not slow, f"parallel form under {s.check}x the step loop in training: {slow}"
    print(f"every parallel form is at least {s.check}x faster than its step loop in training")
