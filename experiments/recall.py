"""Accuracy on `recall` by gap, for the vanilla RNN, the LSTM and the GRU (Olah's example).

"I grew up in France ... I speak fluent *French*": a fact sentence, then `gap` filler words,
then the question; 12 possible answers (chance 8.3 %). The post's claim, measured: as the gap
grows the RNN falls to chance while the gated cells keep the fact.

    python experiments/recall.py               # the full result: 3 cells x 6 gaps
    python experiments/recall.py --minutes 30  # stop after 30 minutes; run again to continue
    python experiments/recall.py --quick       # 3 steps of each run, timed: the projected cost
"""

from __future__ import annotations

import math
from dataclasses import replace

from common import (RESULTS, Budget, arguments, measure, projection, report_projection, run,
                    runs_dir, save)

from lstmlab.train import TrainConfig, evaluate_checkpoint
from lstmlab.viz.plots import plot_accuracy_by_gap

GAPS, CELLS = (5, 10, 20, 50, 100, 200), ("rnn", "lstm", "gru")


def config(cell: str, gap: int, runs) -> TrainConfig:
    return TrainConfig(task="recall", gap=gap, cell=cell, hidden_size=64, embed_size=16,
                       batch_size=32, lr=3e-3, clip=1.0, steps=4000, eval_every=250,
                       eval_batches=16, checkpoint_every=1000, seed=0,
                       out=str(runs / f"{cell}-gap{gap}"))


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    budget, runs = Budget(args.minutes), runs_dir("recall", args.quick)
    result: dict = {"chance": 1 / 12, "gaps": GAPS, "runs": {}}
    accuracy: dict[str, dict[int, float]] = {cell: {} for cell in CELLS}
    for gap in GAPS:
        for cell in CELLS:
            cfg = config(cell, gap, runs)
            entry = {}
            if args.quick:
                entry["projection"] = projection(measure(cfg, evaluate=True), cfg.steps,
                                                 cfg.steps // cfg.eval_every)
                cfg = replace(cfg, steps=3, eval_every=3)
            entry["status"] = run(cfg, budget)
            if entry["status"]["step"]:
                entry["test"] = evaluate_checkpoint(f"{cfg.out}/checkpoint", "test")
                accuracy[cell][gap] = entry["test"]["accuracy"]
            result["runs"][f"{cell}-gap{gap}"] = entry
            print(f"gap {gap:3d}  {cell:4}  step {entry['status']['step']:5d}  test accuracy "
                  f"{100 * accuracy[cell].get(gap, math.nan):5.1f} %")
    result["accuracy"] = accuracy
    print("\n  gap  " + "  ".join(f"{c:>6}" for c in CELLS))
    for gap in GAPS:
        print(f"  {gap:3d}  " + "  ".join(f"{100 * accuracy[c].get(gap, math.nan):5.1f}%"
                                          for c in CELLS))
    if args.quick:
        report_projection(result, [r["projection"] for r in result["runs"].values()])
    RESULTS.mkdir(parents=True, exist_ok=True)
    if any(accuracy.values()):
        figure = RESULTS / f"recall{'-quick' if args.quick else ''}.png"
        plot_accuracy_by_gap({c: a for c, a in accuracy.items() if a}, figure, chance=1 / 12)
        result["figure"] = figure.name
    save("recall", result, args.quick)


if __name__ == "__main__":
    main()
