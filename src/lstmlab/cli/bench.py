"""Training-step speed and memory of every lstmlab variant against torch.nn.LSTM / GRU.

For each shape, every implementation runs forward + backward on the same input, interleaved
round-robin so that machine noise hits all alike; the table gives the median ms, the ratio to
torch.nn.LSTM measured in the same run, the achieved GFLOP/s of the recurrent matmul work, and
the bytes kept for the backward pass (saved tensors, deterministic) and the step's peak memory
above what the process held before it (Linux: the resident-set high-water mark, reset just
before the step). Also times one generation step (B=1, T=1) of a cell against torch.nn.LSTMCell.

    lstmlab bench            # all shapes (several minutes on 2 cores); = benchmarks/speed.py
    lstmlab bench --quick    # one shape, under a minute
    lstmlab bench --cells lstm,gru,ln-lstm --recurrent-dropout 0.25 --zoneout 0.1
                             # lstmlab's layers regularised (torch's have no such option)
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import statistics
import time

import torch

from lstmlab.nn.registry import VARIANTS, make_layer
from lstmlab.nn.stack import Stack

SHAPES = [(32, 128, 128), (32, 128, 512), (8, 512, 256), (1, 1000, 64)]  # (B, T, H)


def saved_bytes(step) -> int:
    """Bytes of the distinct tensors autograd keeps for the backward pass of ``step``."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = step(backward=False)
    del out
    return sum(seen.values())


def _status_bytes(key: str) -> int | None:
    """A ``kB`` line of /proc/self/status (``VmRSS``, ``VmHWM``) in bytes; None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's ceiling for its own adaptive threshold (64-bit)


def _libc():
    """glibc through ctypes, or None (another C library, another OS)."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 -- both must exist
    except (OSError, AttributeError):
        return None
    return libc


def peak_bytes(step) -> float:
    """Peak resident memory of one training step of ``step`` above the process's resident set
    just before it: the kernel's high-water mark (VmHWM) is reset to the current resident set
    (``clear_refs`` 5, Linux >= 4.0), the step runs, and the mark is read back. For the step,
    malloc maps every block of 64 KiB or more on its own (and unmaps it when freed), so freed
    memory of earlier steps is not handed out again unseen and the mark follows the tensors
    alive at once; afterwards the threshold goes to glibc's adaptive ceiling (32 MiB), where
    a process of large tensors would have it. Gradients of the parameters and the input exist
    from the warm-up, as in a training loop. NaN where the kernel offers no such mark."""
    libc = _libc()
    gc.collect()
    if libc is not None:
        libc.malloc_trim(0)
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        before = _status_bytes("VmRSS")
        step()
        after = _status_bytes("VmHWM")
    except OSError:
        before = after = None
    finally:
        if libc is not None:
            libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
    if before is None or after is None:
        return float("nan")
    return float(after - before)


def trainer(module: torch.nn.Module, x: torch.Tensor):
    def step(backward: bool = True):
        out = module(x)[0]
        if backward:
            out.sum().backward()
        return out

    return step


def gates(name: str) -> float:
    """Blocks of H rows in the matmuls (input size = hidden size), for the FLOP count; a block
    reads x and h, 2H^2 multiply-adds. FGR's (3H, 3H) gate feedback adds 9H^2 per step to the
    LSTM's 8H^2, i.e. 8.5 blocks; clockwork counts all modules (an upper bound); a grid layer
    runs two LSTMs per block."""
    return {
        "gru": 3,
        "gru-v3": 3,
        "rnn": 1,
        "nig": 3,
        "nfg": 3,
        "nog": 3,
        "coupled": 3,
        "fgr": 8.5,
        "clockwork": 1,
        "grid": 8,
        "grid-tied": 8,
    }.get(name, 4)


def bench_shape(
    batch: int, steps: int, hidden: int, names: list[str], repeats: int, **regularisers: float
) -> list[tuple]:
    """Rows (name, ms, ratio to torch.nn.LSTM, GFLOP/s, MiB saved for backward, peak MiB of a
    training step above the memory held before it); every lstmlab
    layer gets ``regularisers`` (``recurrent_dropout``, ``zoneout``), torch's layers none."""
    torch.manual_seed(0)
    x = torch.randn(steps, batch, hidden, requires_grad=True)
    impls: dict[str, tuple[torch.nn.Module, float]] = {
        "torch.nn.LSTM": (torch.nn.LSTM(hidden, hidden), 4),
        "torch.nn.GRU": (torch.nn.GRU(hidden, hidden), 3),
    }
    for name in names:
        impls[name] = (make_layer(name, hidden, hidden, **regularisers), gates(name))
    steps_fn = {k: trainer(m, x) for k, (m, _) in impls.items()}
    for fn in steps_fn.values():  # warm up (and build the kernels)
        fn(), fn()
    times: dict[str, list[float]] = {k: [] for k in impls}
    for _ in range(repeats):
        for key, fn in steps_fn.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    base = statistics.median(times["torch.nn.LSTM"])
    peaks = {key: peak_bytes(fn) / 2**20 for key, fn in steps_fn.items()}
    rows = []
    for key, (_module, n) in impls.items():
        ms = statistics.median(times[key])
        flops = 3 * 2 * steps * batch * (hidden + hidden) * n * hidden  # fwd + 2x for bwd
        rows.append(
            (
                key,
                ms * 1e3,
                ms / base,
                flops / ms / 1e9,
                saved_bytes(steps_fn[key]) / 2**20,
                peaks[key],
            )
        )
    return rows


def bench_generation(repeats: int = 3000) -> list[tuple]:
    """One step of a cell (B=1, H=64, no grad) against torch.nn.LSTMCell: the sampling loop.

    Interleaved blocks of 100 calls, best block per cell: the minimum is what the step costs
    when the machine is not busy with something else."""
    torch.manual_seed(0)
    x = torch.randn(1, 64)
    cells: dict[str, torch.nn.Module] = {
        "torch.nn.LSTMCell": torch.nn.LSTMCell(64, 64),
        "torch.nn.GRUCell": torch.nn.GRUCell(64, 64),
    }
    for name in ("lstm", "peephole", "coupled", "fgr", "gru", "gru-v3", "rnn"):
        layer = make_layer(name, 64, 64)
        if isinstance(layer, Stack):
            cells[f"lstmlab {name}"] = layer.cells[0]
    best: dict[str, float] = {k: float("inf") for k in cells}
    block = 100
    with torch.no_grad():
        for _ in range(max(1, repeats // block)):
            for key, cell in cells.items():
                state = cell(x)
                start = time.perf_counter()
                for _ in range(block):
                    state = cell(x, state)
                best[key] = min(best[key], (time.perf_counter() - start) / block)
    base = best["torch.nn.LSTMCell"]
    return [(key, t * 1e6, t / base) for key, t in best.items()]


def _shape(text: str) -> tuple[int, int, int]:
    """``BxTxH`` as (B, T, H)."""
    parts = text.split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"a shape is BxTxH of positive integers, e.g. 32x128x128; got {text!r}")
    batch, steps, hidden = (int(p) for p in parts)
    return batch, steps, hidden


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="one shape, fewer repeats")
    parser.add_argument(
        "--shapes",
        default=None,
        help="comma-separated BxTxH, e.g. 32x128x128 (default: the four above)",
    )
    parser.add_argument("--cells", default=",".join(VARIANTS), help="comma-separated variants")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument(
        "--recurrent-dropout",
        type=float,
        default=0.0,
        help="recurrent dropout on every lstmlab layer (default: 0)",
    )
    parser.add_argument(
        "--zoneout", type=float, default=0.0, help="zoneout on every lstmlab layer (default: 0)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.cells.split(",")
    shapes = SHAPES[:1] if args.quick else SHAPES
    if args.shapes:
        shapes = [_shape(shape) for shape in args.shapes.split(",")]
    regularisers = {
        k: v
        for k, v in (("recurrent_dropout", args.recurrent_dropout), ("zoneout", args.zoneout))
        if v
    }
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, "
        "1 layer, input_size = hidden_size; training step = forward + backward"
        + (
            "; lstmlab layers with " + ", ".join(f"{k} {v}" for k, v in regularisers.items())
            if regularisers
            else ""
        )
    )
    for batch, steps, hidden in shapes:
        repeats = args.repeats or (5 if args.quick else max(5, min(30, 2000 // steps)))
        print(f"\nB{batch} T{steps} H{hidden} (median of {repeats})")
        print(
            f"  {'implementation':16} {'ms':>9} {'x nn.LSTM':>10} {'GFLOP/s':>8} {'saved MiB':>10}"
            f" {'peak MiB':>9}"
        )
        for key, ms, ratio, gflops, mib, peak in bench_shape(
            batch, steps, hidden, names, repeats, **regularisers
        ):
            print(f"  {key:16} {ms:9.2f} {ratio:10.2f} {gflops:8.1f} {mib:10.2f} {peak:9.1f}")
    print("\ngeneration step, B1 H64, no grad (best block of 100 calls)")
    print(f"  {'cell':26} {'us/step':>8} {'x nn.LSTMCell':>14}")
    for key, us, ratio in bench_generation():
        print(f"  {key:26} {us:8.1f} {ratio:14.2f}")
    return 0


if __name__ == "__main__":
    main()
