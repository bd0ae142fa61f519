"""torch.compile and bfloat16 against eager float32, for every cell: a training step's time.

For each cell (a 1-layer layer, B x T x H below), interleaved round-robin so that machine noise
hits all alike: the eager float32 training step (forward + backward), the same step compiled
(``torch.compile(fullgraph=True)``, inductor), and the eager step of the layer in bfloat16;
the median ms, the ratios to eager float32 measured in the same run, and the bfloat16 output's
largest error against float32 computed from the same (bfloat16-rounded) weights and input.

    python benchmarks/deploy.py [--batch 32] [--steps 128] [--hidden 128] [--threads 2]
                                [--cells lstm,gru] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lstmlab.nn.registry import VARIANTS, make_layer


def training_step(layer, x):
    def step():
        out, _ = layer(x)
        out.float().square().mean().backward()

    return step


def compiled_step(layer, x):
    def loss(x):
        out, _ = layer(x)
        return out.square().mean()

    compiled = torch.compile(loss, fullgraph=True)
    return lambda: compiled(x).backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--cells", default=",".join(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    b, t, h = args.batch, args.steps, args.hidden
    print(f"B{b} T{t} H{h}, {args.threads} threads, torch {torch.__version__}")
    print(f"{'cell':12} {'eager ms':>9} {'compiled ms':>11} {'compiled/eager':>14} "
          f"{'bf16 ms':>8} {'bf16/fp32':>9} {'bf16 max err':>12} {'compile s':>9}")  # fmt: skip
    for name in args.cells.split(","):
        torch.manual_seed(0)
        layer = make_layer(name, h, h)
        half = make_layer(name, h, h)
        half.load_state_dict(layer.state_dict())
        half = half.bfloat16()
        x = torch.randn(t, b, h, requires_grad=True)
        xb = x.detach().bfloat16().requires_grad_()
        # The error of computing in bfloat16 (inputs and outputs rounded, float32 inside),
        # against float32 from the same rounded weights and input: rounding the weights
        # themselves changes what a chaotic recurrence computes over many steps.
        rounded = make_layer(name, h, h)
        rounded.load_state_dict({k: v.bfloat16().float() for k, v in layer.state_dict().items()})
        with torch.no_grad():
            error = (half(xb)[0].float() - rounded(xb.float())[0]).abs().max().item()
        torch._dynamo.reset()
        start = time.perf_counter()
        compiled = compiled_step(layer, x)
        compiled()  # compiles
        compile_s = time.perf_counter() - start
        steps = {
            "eager": training_step(layer, x),
            "compiled": compiled,
            "bf16": training_step(half, xb),
        }
        times: dict[str, list[float]] = {k: [] for k in steps}
        for step in steps.values():
            step()  # warm up
        for _ in range(args.repeats):
            for key, step in steps.items():
                begin = time.perf_counter()
                step()
                times[key].append(time.perf_counter() - begin)
        ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
        print(
            f"{name:12} {ms['eager']:9.2f} {ms['compiled']:11.2f} "
            f"{ms['compiled'] / ms['eager']:14.2f} {ms['bf16']:8.2f} "
            f"{ms['bf16'] / ms['eager']:9.2f} {error:12.1e} {compile_s:9.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
