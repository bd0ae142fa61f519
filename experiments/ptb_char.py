"""Penn Treebank, character level: the LSTM baseline of Cooijmans et al. (2016).

One LSTM layer of 1000 units, sequences of 100 characters, batch 64, Adam at lr 0.002, gradient
norm clipped to 1, forget-gate bias 1, a 64-wide embedding of the 50 symbols. Published test
bits per character for a plain LSTM: about 1.36-1.41 (Cooijmans et al. 2016: 1.38; BN-LSTM
1.32). On a 2-core CPU an epoch (784 steps) takes hours (``--quick`` measures it): ``--epochs``
and ``--hidden-size`` trade the result for time.

Bits per character are computed as the papers do: the whole test split as one stream, batch 1,
the state carried throughout, every character after the first scored (442,422 of 442,423).
The vocabulary holds the 50 symbols plus lstmlab's reserved ``<unk>`` at id 0, which no
character maps to; its probability is learned to be ~0, so it changes the bits by a negligible
amount.

    python experiments/ptb_char.py --epochs 10   # 10 epochs of the 1000-unit model
    python experiments/ptb_char.py --minutes 120 # stop after 2 hours; run again to continue
    python experiments/ptb_char.py --quick       # 3 steps, timed: the projected cost
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace

from common import Budget, arguments, curve, measure, projection, report_projection, run, \
    runs_dir, save

from lstmlab.train import TrainConfig, evaluate_checkpoint

CHARS, BATCH, BPTT = 5_017_482, 64, 100
EPOCH = math.ceil((CHARS // BATCH - 1) / BPTT)          # 784 chunks: steps per epoch


def config(runs, epochs: int, hidden: int) -> TrainConfig:
    return TrainConfig(task="text", text="ptb-char", cell="lstm", num_layers=1,
                       hidden_size=hidden, embed_size=64, batch_size=BATCH, bptt=BPTT,
                       optimizer="adam", lr=2e-3, clip=1.0, steps=epochs * EPOCH,
                       eval_every=EPOCH // 2, checkpoint_every=50, seed=0,
                       out=str(runs / f"lstm{hidden}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs (default 20)")
    parser.add_argument("--hidden-size", type=int, default=1000, help="units (default 1000)")
    args = arguments(parser.description, parser)
    budget, runs = Budget(args.minutes), runs_dir("ptb_char", args.quick)
    cfg = config(runs, args.epochs, args.hidden_size)
    result: dict = {"paper": {"test_bpc_lstm": 1.38}, "steps_per_epoch": EPOCH,
                    "hidden_size": args.hidden_size, "epochs": args.epochs}
    if args.quick:
        timing = measure(cfg, steps=3, evaluate=True)
        cfg = replace(cfg, steps=3, eval_every=3)
    result["status"] = run(cfg, budget)
    if result["status"]["step"]:
        start = time.perf_counter()
        result["test"] = evaluate_checkpoint(f"{cfg.out}/checkpoint", "test")
        test_seconds = time.perf_counter() - start
        result["valid_bpc_by_epoch"] = [(s / EPOCH, v) for s, v in
                                        curve(cfg.out, "valid_bits_per_token")]
        print(f"step {result['status']['step']} (epoch {result['status']['step'] / EPOCH:.2f}): "
              f"test {result['test']['bits_per_token']:.3f} bits per character over "
              f"{result['test']['tokens']} characters (plain LSTM in the papers: 1.36-1.41)")
    if args.quick:
        timing |= {"test_wall_seconds": test_seconds}
        result["projection"] = projection(timing, args.epochs * EPOCH, 2 * args.epochs)
        result["hours_per_epoch_idle"] = (timing["step_seconds_idle"] * EPOCH
                                          + 2 * timing["eval_seconds_idle"]) / 3600
        print(f"{result['hours_per_epoch_idle']:.2f} h per epoch on this machine idle")
        report_projection(result, [result["projection"]])
    elif result["status"]["done"]:
        result["claims"] = {"test bits per character <= 1.41":
                            result["test"]["bits_per_token"] <= 1.41}
        for claim, ok in result["claims"].items():
            print(f"{'PASS' if ok else 'FAIL'}  {claim}")
    save("ptb_char", result, args.quick)


if __name__ == "__main__":
    main()
