"""The adding problem (Hochreiter & Schmidhuber 1997, exp. 4; Le et al. 2015's form): LSTM vs RNN.

Each step holds a value in [0, 1) and a marker; the target is the sum of the two marked values,
one in each half of the sequence. Predicting the mean scores MSE 1/6 ≈ 0.167. Claim checked: at
T = 100 and 200 the LSTM goes below 0.01 MSE while the vanilla (tanh) RNN stays near 0.167.

    python experiments/adding.py               # the full result: 4 runs of 8000 steps
    python experiments/adding.py --minutes 30  # stop after 30 minutes; run again to continue
    python experiments/adding.py --quick       # 3 steps of each run, timed: the projected cost
"""

from __future__ import annotations

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

LENGTHS, CELLS = (100, 200), ("lstm", "rnn")


def config(cell: str, length: int, runs) -> TrainConfig:
    return TrainConfig(
        task="adding",
        length=length,
        cell=cell,
        hidden_size=128,
        batch_size=64,
        lr=1e-3,
        clip=1.0,
        steps=8000,
        eval_every=250,
        eval_batches=16,
        checkpoint_every=500,
        seed=0,
        out=str(runs / f"{cell}-T{length}"),
    )


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    budget, runs = Budget(args.minutes), runs_dir("adding", args.quick)
    result: dict = {"baseline_mse": 1 / 6, "runs": {}}
    for length in LENGTHS:
        for cell in CELLS:
            cfg = config(cell, length, runs)
            entry = task_run(cfg, budget, args.quick)
            if entry["status"]["step"]:
                entry["valid_curve"] = curve(cfg.out, "valid_mse")
            result["runs"][f"{cell}-T{length}"] = entry
            mse = entry.get("test", {}).get("mse", float("nan"))
            print(f"T={length:3d} {cell:4}  step {entry['status']['step']:5d}  test MSE {mse:.4f}")
    runs_ = result["runs"]
    if args.quick:
        report_projection(result, [r["projection"] for r in runs_.values()])
    elif all(r["status"]["done"] for r in runs_.values()):
        check_claims(
            result,
            {
                **{
                    f"lstm T={n}: test MSE < 0.01": runs_[f"lstm-T{n}"]["test"]["mse"] < 0.01
                    for n in LENGTHS
                },
                **{
                    f"rnn T={n}: test MSE within 0.02 of 1/6": abs(
                        runs_[f"rnn-T{n}"]["test"]["mse"] - 1 / 6
                    )
                    < 0.02
                    for n in LENGTHS
                },
            },
        )
    else:
        print("not finished: run the script again to continue")
    if any(r.get("valid_curve") for r in runs_.values()):
        plot(result, args.quick)
    save("adding", result, args.quick)


def plot(result: dict, quick: bool) -> None:
    """Validation MSE against training steps (log scale), every run, with the 1/6 baseline."""
    with figure("adding", quick, result) as ax:
        for name, entry in result["runs"].items():
            if entry.get("valid_curve"):
                steps, mse = zip(*entry["valid_curve"])
                ax.plot(
                    steps,
                    mse,
                    "o-" if name.startswith("lstm") else "s--",
                    markersize=3,
                    label=name.replace("-", ", "),
                )
        ax.axhline(1 / 6, color="gray", linestyle=":", label="predict the mean (1/6)")
        ax.axhline(0.01, color="black", linestyle=":", linewidth=0.8, label="0.01 (solved)")
        ax.set(
            xlabel="training step",
            ylabel="validation MSE",
            yscale="log",
            title="The adding problem: LSTM vs vanilla RNN",
        )


if __name__ == "__main__":
    main()
