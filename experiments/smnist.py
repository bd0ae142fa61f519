"""Sequential MNIST with an LSTM: pixel by pixel, and in a fixed permuted order (Le et al. 2015).

784 steps of one pixel; the digit is read from the last step. Published LSTM test accuracy:
about 98.2-98.9 % in scan order and 88-92 % permuted (Arjovsky et al. 2016; Cooijmans et al.
2016), after tens of epochs on a GPU. On a 2-core CPU an epoch takes hours (``--quick``
measures it), so the script trains for ``--epochs`` (or ``--minutes``) and reports what it
reached: the learning curve (validation accuracy on 2,000 images every half epoch), the test
accuracy on all 10,000 test images, and the time per epoch.

Settings: 128 units, Adam lr 1e-3, batch 100 (an epoch = 500 steps), gradient norm clipped
to 1, forget-gate bias 1; the permutation is drawn from seed 0 and saved with the run.

    python experiments/smnist.py --epochs 5      # 5 epochs of each mode
    python experiments/smnist.py --minutes 120   # stop after 2 hours; run again to continue
    python experiments/smnist.py --modes permuted --minutes 60   # train one mode, report both
    python experiments/smnist.py --quick         # 3 steps of each mode, timed
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

from common import (
    Budget,
    arguments,
    curve,
    figure,
    measure,
    projection,
    report_projection,
    reported,
    run,
    runs_dir,
    save,
    step_of,
)
from lstmlab.train import TrainConfig, evaluate_checkpoint
from lstmlab.viz.plots import read_metrics

MODES, STEPS_PER_EPOCH = ("pixel", "permuted"), 500  # 50,000 images / batch 100
PUBLISHED = {"pixel": 0.982, "permuted": 0.88}  # published results (Arjovsky et al. 2016)


def config(mode: str, epochs: int, runs) -> TrainConfig:
    return TrainConfig(
        task="smnist",
        mnist_mode=mode,
        cell="lstm",
        hidden_size=128,
        batch_size=100,
        lr=1e-3,
        clip=1.0,
        steps=epochs * STEPS_PER_EPOCH,
        eval_every=STEPS_PER_EPOCH // 2,
        eval_batches=20,
        checkpoint_every=50,
        seed=0,
        out=str(runs / mode),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50, help="epochs per mode (default 50)")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"which runs to train now, comma-separated (default {','.join(MODES)}); "
        "the others are reported as they stand",
    )
    args = arguments(parser.description, parser)
    budget, runs = Budget(args.minutes), runs_dir("smnist", args.quick)
    result: dict = {"epochs": args.epochs, "steps_per_epoch": STEPS_PER_EPOCH, "runs": {}}
    train_now = {m.strip() for m in args.modes.split(",") if m.strip()}
    if unknown := train_now - set(MODES):
        parser.error(
            f"--modes: unknown {', '.join(sorted(unknown))}; choose from {', '.join(MODES)}"
        )
    for mode in MODES:
        cfg = config(mode, args.epochs, runs)
        entry = {}
        if args.quick:
            timing = measure(cfg, steps=3, evaluate=True)
            entry["projection"] = projection(timing, cfg.steps, cfg.steps // cfg.eval_every)
            entry["hours_per_epoch_idle"] = (
                timing["step_seconds_idle"] * STEPS_PER_EPOCH + 2 * timing["eval_seconds_idle"]
            ) / 3600
            cfg = replace(cfg, steps=2, eval_every=2, eval_batches=1)
        entry["status"] = run(cfg, budget) if mode in train_now else standing(cfg)
        if entry["status"]["step"]:
            entry["test"] = evaluate_checkpoint(reported(cfg.out), "test")  # all 10,000
            entry["valid_curve"] = curve(cfg.out, "valid_accuracy")
            entry["epochs_done"] = entry["status"]["step"] / STEPS_PER_EPOCH
            entry["minutes_per_epoch_measured"] = minutes_per_epoch(cfg)
        result["runs"][mode] = entry
        print(
            f"{mode:8}  epoch {entry.get('epochs_done', 0):6.2f}  test accuracy "
            f"{100 * entry.get('test', {}).get('accuracy', math.nan):5.2f} % (10,000 images)"
        )
        if "hours_per_epoch_idle" in entry:
            print(f"          {entry['hours_per_epoch_idle']:.2f} h per epoch on this machine idle")
    if args.quick:
        report_projection(result, [r["projection"] for r in result["runs"].values()])
    if any(r.get("valid_curve") for r in result["runs"].values()):
        plot(result, args.quick)
    save("smnist", result, args.quick)


def standing(cfg: TrainConfig) -> dict:
    """A run left as it stands this time (not in ``--modes``), in :func:`common.run`'s form."""
    step = step_of(Path(cfg.out) / "checkpoint")
    return {"step": step, "done": step >= cfg.steps}


def minutes_per_epoch(cfg) -> float:
    """Minutes per epoch, from the throughput the run logged last (images/s over its latest
    process's training so far, the half-epoch validations included)."""
    rates = [
        r["items_per_s"]
        for r in read_metrics(Path(cfg.out) / "metrics.jsonl")
        if "items_per_s" in r
    ]
    return STEPS_PER_EPOCH * cfg.batch_size / rates[-1] / 60 if rates else math.nan


def plot(result: dict, quick: bool) -> None:
    """Validation accuracy against epochs, each mode beside its published test accuracy."""
    with figure("smnist", quick, result) as ax:
        for mode, entry in result["runs"].items():
            if entry.get("valid_curve"):
                steps, accuracy = zip(*entry["valid_curve"])
                (line,) = ax.plot(
                    [s / STEPS_PER_EPOCH for s in steps],
                    [100 * a for a in accuracy],
                    "o-",
                    markersize=3,
                    label=f"LSTM, {mode} (validation)",
                )
                ax.axhline(
                    100 * PUBLISHED[mode],
                    color=line.get_color(),
                    linestyle="--",
                    label=f"published {mode} (test)",
                )
        ax.set(
            xlabel="epoch", ylabel="accuracy (%)", title="Sequential MNIST, LSTM 128", ylim=(0, 100)
        )


if __name__ == "__main__":
    main()
