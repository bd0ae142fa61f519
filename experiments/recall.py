"""Accuracy on `recall` by gap, for the vanilla RNN, the LSTM and the GRU (Olah's example).

"I grew up in France ... I speak fluent *French*": a fact sentence, then `gap` filler words,
then the question; 12 possible answers (chance 8.3 %). The post's claim, measured: as the gap
grows the RNN falls to chance while the gated cells keep the fact.

Two ways to train, both reported. From scratch: one run per cell and gap (4,000 steps). By a
curriculum (Bengio et al. 2009; Zaremba & Sutskever 2014 grew their tasks the same way): one
chain per cell, the gap growing 10, 20, 30, 50, 75, 100, 150, 200, each stage 1,500 steps starting
from the previous stage's weights (``init_from``), tested at its own gap. From scratch, no cell
leaves the task's initial plateau at gaps of 50 and more within the budget (the fact is a weak
signal under 50+ filler words); grown gradually, the gated cells keep it at every gap.

    python experiments/recall.py               # the full result: 3 cells x 6 gaps, 3 chains
    python experiments/recall.py --minutes 30  # stop after 30 minutes; run again to continue
    python experiments/recall.py --quick       # 3 steps of each run, timed: the projected cost
"""

from __future__ import annotations

import math

from common import (
    RESULTS,
    Budget,
    arguments,
    check_claims,
    report_projection,
    run,
    runs_dir,
    save,
    task_run,
)
from lstmlab.train import TrainConfig, evaluate_checkpoint
from lstmlab.viz.plots import plot_accuracy_by_gap

GAPS, CELLS = (5, 10, 20, 50, 100, 200), ("rnn", "lstm", "gru")
STAGES, STAGE_STEPS = (10, 20, 30, 50, 75, 100, 150, 200), 1500


def config(
    cell: str,
    gap: int,
    runs,
    steps: int = 4000,
    init_from: str | None = None,
    out: str | None = None,
) -> TrainConfig:
    return TrainConfig(
        task="recall",
        gap=gap,
        cell=cell,
        hidden_size=64,
        embed_size=16,
        batch_size=32,
        lr=3e-3,
        clip=1.0,
        steps=steps,
        eval_every=250,
        eval_batches=16,
        checkpoint_every=500,
        seed=0,
        init_from=init_from,
        out=out or str(runs / f"{cell}-gap{gap}"),
    )


def curriculum(cell: str, runs, budget: Budget, quick: bool) -> dict:
    """Train ``cell`` through :data:`STAGES`, each stage from the last one's weights; return
    ``{"accuracy": {gap: test accuracy}, "status": {gap: run status}}`` for the stages reached."""
    accuracy, status, previous = {}, {}, None
    for gap in STAGES:
        cfg = config(
            cell,
            gap,
            runs,
            steps=3 if quick else STAGE_STEPS,
            init_from=previous,
            out=str(runs / "curriculum" / f"{cell}-gap{gap}"),
        )
        status[gap] = run(cfg, budget)
        if not status[gap]["done"]:
            break  # the next stage starts from this one's final weights
        previous = f"{cfg.out}/checkpoint"
        accuracy[gap] = evaluate_checkpoint(previous, "test")["accuracy"]
        print(f"curriculum  gap {gap:3d}  {cell:4}  test accuracy {100 * accuracy[gap]:5.1f} %")
    return {"accuracy": accuracy, "status": status}


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    budget, runs = Budget(args.minutes), runs_dir("recall", args.quick)
    result: dict = {"chance": 1 / 12, "gaps": GAPS, "runs": {}}
    accuracy: dict[str, dict[int, float]] = {cell: {} for cell in CELLS}
    for gap in GAPS:
        for cell in CELLS:
            entry = task_run(config(cell, gap, runs), budget, args.quick)
            if entry["status"]["step"]:
                accuracy[cell][gap] = entry["test"]["accuracy"]
            result["runs"][f"{cell}-gap{gap}"] = entry
            print(
                f"gap {gap:3d}  {cell:4}  step {entry['status']['step']:5d}  test accuracy "
                f"{100 * accuracy[cell].get(gap, math.nan):5.1f} %"
            )
    result["accuracy"] = accuracy
    result["curriculum"] = {
        "stages": STAGES,
        "stage_steps": STAGE_STEPS,
        **{cell: curriculum(cell, runs, budget, args.quick) for cell in CELLS},
    }
    by_stage = {cell: result["curriculum"][cell]["accuracy"] for cell in CELLS}
    print("\n  gap  " + "  ".join(f"{c:>6}" for c in CELLS))
    for gap in GAPS:
        print(
            f"  {gap:3d}  "
            + "  ".join(f"{100 * accuracy[c].get(gap, math.nan):5.1f}%" for c in CELLS)
        )
    print("\n  curriculum\n  gap  " + "  ".join(f"{c:>6}" for c in CELLS))
    for gap in STAGES:
        print(
            f"  {gap:3d}  "
            + "  ".join(f"{100 * by_stage[c].get(gap, math.nan):5.1f}%" for c in CELLS)
        )
    if not args.quick and 100 in by_stage["lstm"]:
        check_claims(
            result, {"lstm >= 99 % at gap 100 (curriculum)": by_stage["lstm"][100] >= 0.99}
        )
    if args.quick:
        report_projection(result, [r["projection"] for r in result["runs"].values()])
    RESULTS.mkdir(parents=True, exist_ok=True)
    if any(accuracy.values()):
        figure = RESULTS / f"recall{'-quick' if args.quick else ''}.png"
        plot_accuracy_by_gap({c: a for c, a in accuracy.items() if a}, figure, chance=1 / 12)
        result["figure"] = figure.name
    if any(by_stage.values()):
        figure = RESULTS / f"recall-curriculum{'-quick' if args.quick else ''}.png"
        plot_accuracy_by_gap({c: a for c, a in by_stage.items() if a}, figure, chance=1 / 12)
        result["curriculum_figure"] = figure.name
    save("recall", result, args.quick)


if __name__ == "__main__":
    main()
