"""The wheel's builds of the kernels against the -march=native build made at first use.

The three are compiled here from the same sources: the wheel's portable and AVX2 builds with
setup.py's flags, the native one with lstmlab.kernels._build's. Each layer runs a training step
(forward + backward, float32, input size = hidden size) with each build in turn, interleaved so
that machine noise hits all alike; the table gives the median ms and the ratios to native.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/portable.py --threads 2
    python benchmarks/portable.py --threads 2 --shape 32x128x256 --repeats 20 --cells peephole,gru
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils import cpp_extension

from lstmlab.kernels import _build
from lstmlab.nn.registry import make_layer

ROOT = Path(__file__).resolve().parent.parent


def wheel_flags() -> dict[str, list[str]]:
    """setup.py's CFLAGS and AVX2_FLAGS, without running its setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    names = {"CFLAGS", "AVX2_FLAGS"}
    assigns = [
        node
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id in names for t in node.targets)
    ]
    found: dict[str, list[str]] = {}
    exec(compile(ast.Module(body=assigns, type_ignores=[]), "setup.py", "exec"), found)
    return {"portable": found["CFLAGS"], "avx2": found["AVX2_FLAGS"]}


def wheel_build(name: str, flags: list[str]) -> _build.Kernels:
    key = hashlib.sha256(
        f"{_build.sources_digest()}|{torch.__version__}|{' '.join(flags)}".encode()
    ).hexdigest()[:16]
    root = Path(os.environ.get("LSTMLAB_BUILD_DIR", Path.home() / ".cache" / "lstmlab"))
    folder = root / f"wheel-{name}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    module = cpp_extension.load(
        name=f"lstmlab_wheel_{name}",
        sources=[str(_build._SOURCES / "ext.cpp")],
        build_directory=str(folder),
        extra_cflags=flags,
    )
    return _build.Kernels(module)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--shape", default="32x128x256", help="BxTxH")
    parser.add_argument("--cells", default="peephole,gru,ln-lstm", help="lstmlab bench's names")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batch, steps, hidden = (int(n) for n in args.shape.split("x"))

    native = _build.extension()
    if native is None or native._module.__name__ != _build._NAME:
        raise SystemExit("the -march=native build is unavailable here")
    flags = wheel_flags()
    builds = {"native": native} | {name: wheel_build(name, f) for name, f in flags.items()}

    def use(build: str) -> None:  # what every fused op's compiled() returns from now on
        _build.extension = lambda: builds[build]

    torch.manual_seed(0)
    x = torch.randn(steps, batch, hidden, requires_grad=True)
    layers = {name: make_layer(name, hidden, hidden) for name in args.cells.split(",")}

    def step(name: str, build: str) -> float:
        use(build)
        start = time.perf_counter()
        layers[name](x)[0].sum().backward()
        return time.perf_counter() - start

    times: dict[tuple[str, str], list[float]] = {(n, b): [] for n in layers for b in builds}
    for key in times:  # warm up
        step(*key), step(*key)
    for _ in range(args.repeats):
        for key in times:
            times[key].append(step(*key))

    lines = Path("/proc/cpuinfo").read_text().splitlines()
    models = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
    cpu = models[0] if models else platform.machine()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu}")
    print(f"B{batch} T{steps} H{hidden}, float32, forward + backward, median of {args.repeats}")
    for name, f in {"native": _build._CFLAGS, **flags}.items():
        print(f"{name} flags: {' '.join(f)}")
    head = ["layer", "native ms", "portable ms", "avx2 ms", "portable/native", "avx2/native"]
    print(" ".join(f"{h:>15}" for h in head))
    for name in layers:
        ms = [statistics.median(times[name, b]) * 1e3 for b in ("native", "portable", "avx2")]
        row = [f"{m:.2f}" for m in ms] + [f"{ms[1] / ms[0]:.2f}", f"{ms[2] / ms[0]:.2f}"]
        print(" ".join(f"{c:>15}" for c in [name, *row]))


if __name__ == "__main__":
    main()
