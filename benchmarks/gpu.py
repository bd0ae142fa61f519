"""GPU speed and memory of lstmlab's layers (the Triton kernels) against cuDNN and FlashRNN.

For every variant with a Triton kernel, a training step (forward and backward) and an inference
step, timed with CUDA events (median of --repeats after --warmup), beside cuDNN's torch.nn.LSTM /
GRU / RNN of the same size (the ratio is lstmlab's time over cuDNN's: below 1 is faster), the
peak memory of the training step (torch.cuda.max_memory_allocated) and, where the ``flashrnn``
package imports, FlashRNN's LSTM / GRU / Elman training step.

    python benchmarks/gpu.py [--quick] [--variants lstm,peephole,gru] [--dtypes float32,bfloat16]

The standard LSTM layer runs torch's own kernel (cuDNN) whole; the row ``lstm/op`` runs the same
cell layer by layer on lstmlab's operator (the Triton kernels), as a compiled graph does.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from collections.abc import Callable

import torch
from torch import Tensor, nn

VARIANTS = "lstm/op,lstm,peephole,coupled,nig,nfg,nog,niaf,noaf,fgr,gru,gru-v3,rnn,clockwork".split(
    ","
)
SIZES = [  # (batch, length, hidden)
    (16, 128, 128),
    (16, 1024, 1024),
    (64, 512, 512),
    (256, 128, 1024),
    (256, 1024, 128),
    (256, 1024, 1024),
]
QUICK_SIZES = [(16, 128, 128), (64, 512, 512), (256, 128, 1024)]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="three sizes, the main variants")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="float32 and/or bfloat16")
    parser.add_argument("--sizes", default=None, help="BxTxH,... e.g. 16x128x128,64x512x512")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    return parser.parse_args(argv)


def timed(fn: Callable[[], object], warmup: int, repeats: int) -> float:
    """Median milliseconds of ``fn`` on the GPU."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def peak_mib(fn: Callable[[], object]) -> float:
    """Peak memory of one call of ``fn`` above what was allocated before it, in MiB."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def steps(layer: nn.Module, x: Tensor) -> tuple[Callable[[], object], Callable[[], object]]:
    """A training step (forward, backward) and an inference step of ``layer`` on ``x``."""
    grad = torch.randn_like(layer(x)[0])

    def train() -> None:
        out = layer(x)[0]
        out.backward(grad)

    def infer() -> None:
        with torch.inference_mode():
            layer(x)

    return train, infer


def cudnn_for(name: str, hidden: int, dtype: torch.dtype) -> nn.Module:
    if name.startswith("gru"):
        return nn.GRU(hidden, hidden).cuda().to(dtype)
    if name in ("rnn", "clockwork"):
        return nn.RNN(hidden, hidden).cuda().to(dtype)
    return nn.LSTM(hidden, hidden).cuda().to(dtype)


def flashrnn_step(name: str, b: int, t: int, h: int, dtype: torch.dtype):
    """FlashRNN's training step for the same family and size, or None."""
    try:
        from flashrnn import flashrnn
    except ImportError:
        return None
    function, gates = (
        ("gru", 3) if name.startswith("gru") else ("elman", 1) if name == "rnn" else ("lstm", 4)
    )
    if name not in ("lstm", "lstm/op", "gru", "rnn"):
        return None
    dtype_name = {torch.float32: "float32", torch.bfloat16: "bfloat16"}[dtype]
    wx = torch.randn(b, t, gates, 1, h, device="cuda", dtype=dtype, requires_grad=True)
    r = torch.randn(gates, 1, h, h, device="cuda", dtype=dtype, requires_grad=True)
    bias = torch.randn(gates, 1, h, device="cuda", dtype=dtype, requires_grad=True)

    def train() -> None:
        out, _ = flashrnn(wx, r, bias, function=function, dtype=dtype_name)
        out.float().sum().backward()

    return train


def measure(name: str, b: int, t: int, h: int, dtype: torch.dtype, args) -> list[str]:
    from lstmlab.nn.registry import make_layer

    layer = make_layer(name.removesuffix("/op"), h, h).cuda().to(dtype)
    if name.endswith("/op"):
        layer._torch_kernel = False  # layer by layer on the operator
    x = torch.randn(t, b, h, device="cuda", dtype=dtype, requires_grad=True)
    train, infer = steps(layer, x)
    base_train, base_infer = steps(cudnn_for(name, h, dtype), x)
    ours_t, ours_i = (
        timed(train, args.warmup, args.repeats),
        timed(infer, args.warmup, args.repeats),
    )
    base_t = timed(base_train, args.warmup, args.repeats)
    base_i = timed(base_infer, args.warmup, args.repeats)
    row = [f"{ours_t:.2f}", f"{base_t:.2f}", f"{ours_t / base_t:.2f}"]
    row += [f"{ours_i:.2f}", f"{base_i:.2f}", f"{ours_i / base_i:.2f}"]
    row += [f"{peak_mib(train):.0f}", f"{peak_mib(base_train):.0f}"]
    try:
        flash = flashrnn_step(name, b, t, h, dtype)
        row.append(
            "-" if flash is None else f"{ours_t / timed(flash, args.warmup, args.repeats):.2f}"
        )
    except Exception as error:  # FlashRNN limits its head sizes and batch shapes
        row.append(f"n/a ({type(error).__name__})")
    return row


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if not torch.cuda.is_available():
        raise SystemExit(
            "benchmarks/gpu.py measures the Triton kernels on a CUDA GPU, and torch sees none here"
        )
    variants = args.variants.split(",") if not args.quick else ["lstm/op", "peephole", "gru"]
    sizes = QUICK_SIZES if args.quick else SIZES
    if args.sizes:
        sizes = [tuple(int(n) for n in s.split("x")) for s in args.sizes.split(",")]
    header = [
        "variant", "dtype", "B", "T", "H", "train ms", "cuDNN ms", "ratio", "infer ms",
        "cuDNN ms", "ratio", "peak MiB", "cuDNN MiB", "vs FlashRNN",
    ]  # fmt: skip
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for dtype_name, (b, t, h), name in itertools.product(args.dtypes.split(","), sizes, variants):
        try:
            row = measure(name, b, t, h, DTYPES[dtype_name], args)
        except Exception as error:  # one failed size or variant does not end the table
            row = [f"error: {type(error).__name__}: {error}"[:80]] + [""] * (len(header) - 6)
        print("| " + " | ".join([name, dtype_name, str(b), str(t), str(h), *row]) + " |")
        sys.stdout.flush()
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
