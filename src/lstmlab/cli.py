"""The ``lstmlab`` command line."""

from __future__ import annotations

import argparse
import sys
import time

import torch

from .registry import VARIANTS, make_layer


def demo(args: argparse.Namespace) -> int:
    """Build every variant, run it forward and backward on random input, and show what it computed."""
    torch.manual_seed(args.seed)
    x = torch.randn(args.batch, args.steps, args.input_size)
    print(f"every cell of the post on random input: batch {args.batch}, {args.steps} steps, "
          f"{args.input_size} -> {args.hidden_size} units, {args.layers} layers, bidirectional\n")
    print(f"{'cell':10} {'params':>8} {'output':>14} {'fwd+bwd ms':>11}  mean gate activations")
    for name, (_, _, about) in VARIANTS.items():
        layer = make_layer(name, args.input_size, args.hidden_size, num_layers=args.layers,
                           batch_first=True, bidirectional=True)
        start = time.perf_counter()
        out, _, gates = layer(x, return_gates=True)
        out.square().mean().backward()
        ms = 1e3 * (time.perf_counter() - start)
        params = sum(p.numel() for p in layer.parameters())
        means = "  ".join(f"{k}={v.mean():.2f}" for k, v in gates[0].items()) or "(no gates)"
        print(f"{name:10} {params:8d} {str(tuple(out.shape)):>14} {ms:11.1f}  {means}")
    reference = torch.nn.LSTM(args.input_size, args.hidden_size, args.layers, batch_first=True,
                              bidirectional=True)
    ours = make_layer("lstm", args.input_size, args.hidden_size, num_layers=args.layers,
                      batch_first=True, bidirectional=True)
    ours.load_state_dict(reference.state_dict())
    err = (ours(x)[0] - reference(x)[0]).abs().max().item()
    print(f"\nlstmlab.LSTM with torch.nn.LSTM's weights: max |difference| = {err:.2e}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lstmlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run every cell of the post on random input")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--input-size", type=int, default=8)
    p.add_argument("--hidden-size", type=int, default=16)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=demo)
    from . import bench

    p = sub.add_parser("bench", help="time every cell against torch.nn.LSTM (speed, memory)")
    bench.add_arguments(p)
    p.set_defaults(run=bench.run)
    sub.add_parser("cells", help="list the built-in cells").set_defaults(
        run=lambda a: print("\n".join(f"{k:10} {v[2]}" for k, v in VARIANTS.items())) or 0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
