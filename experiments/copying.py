"""The copying memory problem at T = 100 (Arjovsky, Shah & Bengio 2016, sec. 4.1 and Fig. 1).

Ten symbols from 8 categories, T blanks (the last one a delimiter), then the symbols must be
written out again; the loss is the cross-entropy averaged over all T + 20 steps. A model with
no memory can do no better than the baseline 10 log(8) / (T + 20) ≈ 0.173 at T = 100.
Arjovsky et al.'s Fig. 1 plots each model's loss against training steps next to that baseline;
this script makes the same plot (``results/copying.png``) for an LSTM and a vanilla RNN.

Differences from the paper: Adam (lr 1e-3) instead of RMSProp, 128 units for both cells.

    python experiments/copying.py               # the full result: 2 runs of 20,000 steps
    python experiments/copying.py --minutes 30  # stop after 30 minutes; run again to continue
    python experiments/copying.py --quick       # 3 steps of each run, timed: the projected cost
"""

from __future__ import annotations

import math

from common import (
    Budget,
    arguments,
    check_claims,
    curve,
    figure,
    report_projection,
    runs_dir,
    save,
    task_run,
)
from lstmlab.train import TrainConfig

T, CELLS = 100, ("lstm", "rnn")
BASELINE = 10 * math.log(8) / (T + 20)


def config(cell: str, runs) -> TrainConfig:
    return TrainConfig(
        task="copy",
        delay=T,
        cell=cell,
        hidden_size=128,
        embed_size=16,
        batch_size=20,
        lr=1e-3,
        clip=1.0,
        steps=20_000,
        eval_every=250,
        eval_batches=16,
        checkpoint_every=1000,
        seed=0,
        out=str(runs / cell),
    )


def plot(result: dict, quick: bool) -> None:
    with figure("copying", quick, result) as ax:
        for cell, entry in result["runs"].items():
            if entry.get("train_curve"):
                steps, losses = zip(*entry["train_curve"])
                ax.plot(steps, losses, label=f"{cell} (training batches)", alpha=0.6)
            if entry.get("valid_curve"):
                steps, losses = zip(*entry["valid_curve"])
                ax.plot(steps, losses, "o-", markersize=2, label=f"{cell} (validation)")
        ax.axhline(BASELINE, color="gray", linestyle="--", label="memoryless baseline")
        ax.set(
            xlabel="training step",
            ylabel="cross-entropy (nats per step)",
            title=f"Copying problem, T = {T}",
        )
        values = [v for e in result["runs"].values() for _, v in e.get("valid_curve", [])]
        if any(v < 3 * BASELINE for v in values):  # zoom on the baseline, as in Fig. 1
            ax.set_ylim(0, 3 * BASELINE)


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    budget, runs = Budget(args.minutes), runs_dir("copying", args.quick)
    result: dict = {"T": T, "baseline": BASELINE, "runs": {}}
    for cell in CELLS:
        cfg = config(cell, runs)
        entry = task_run(cfg, budget, args.quick)
        if entry["status"]["step"]:
            entry["valid_curve"] = curve(cfg.out, "valid_cross_entropy")
            train = curve(cfg.out, "loss")
            entry["train_curve"] = [
                (s, sum(v for _, v in train[k : k + 50]) / len(train[k : k + 50]))
                for k, (s, _) in enumerate(train)
                if k % 50 == 0
            ]
        result["runs"][cell] = entry
        test = entry.get("test", {})
        print(
            f"{cell:4}  step {entry['status']['step']:5d}  test cross-entropy "
            f"{test.get('cross_entropy', math.nan):.4f} (baseline {BASELINE:.4f})  "
            f"recalled symbols {100 * test.get('accuracy', math.nan):.1f} %"
        )
    if args.quick:
        report_projection(result, [r["projection"] for r in result["runs"].values()])
    elif all(r["status"]["done"] for r in result["runs"].values()):
        check_claims(
            result,
            {
                "lstm: test cross-entropy below the baseline": result["runs"]["lstm"]["test"][
                    "cross_entropy"
                ]
                < BASELINE
            },
        )
    plot(result, args.quick)
    save("copying", result, args.quick)


if __name__ == "__main__":
    main()
