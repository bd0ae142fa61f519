"""A search-space odyssey on a CPU: which LSTM variant should I use?

Greff et al. 2015 ("LSTM: A Search Space Odyssey", IEEE TNNLS) trained eight LSTM variants on
speech, handwriting and music and found none clearly better than the vanilla LSTM, while
removing the forget gate (NFG) or the output activation (NOAF) hurt most. This script asks the
same question on two of the post's long-range problems, with every cell held to the same
parameter count, steps, time and seeds (see `lstmlab study --help`):

1. recall at gap 100 ("I grew up in France ... I speak fluent *French*"), at `lstmlab train`'s
   defaults for the task (chrono initialisation, Tallec & Ollivier 2018);
2. the adding problem at T = 50 (Hochreiter & Schmidhuber 1997, exp. 4), forget-gate bias 1.

The LSTM's descendants (minGRU, minLSTM, mLSTM, sLSTM) run beside Greff et al.'s variants.

    python experiments/odyssey.py                  # the full study: about 2 x --budget
    python experiments/odyssey.py --lr-search 4    # with Greff et al.'s learning-rate search
    python experiments/odyssey.py --tasks recall   # one task only
    python experiments/odyssey.py --tiny           # a smoke test: seconds, numbers meaningless

Writes experiments/results/odyssey-recall/ and odyssey-adding/ (results.md, results.csv,
boxplot.png, every run's metrics.jsonl) and prints both tables. Stopped, it resumes where it was
when run again with the same arguments.
"""

import argparse
import csv
from pathlib import Path

from lstmlab.study import cli as study_cli

CELLS = "lstm,peephole,coupled,nig,nfg,nog,niaf,noaf,fgr,gru,rnn,mingru,minlstm,mlstm,slstm"
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    # Under a guard: the study's worker processes import this file again.
    parser = argparse.ArgumentParser(description="Every LSTM variant on recall and adding.")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cells", default=CELLS, help="comma-separated cells (default: all)")
    parser.add_argument("--tasks", default="recall,adding", help="comma-separated: recall, adding")
    parser.add_argument("--budget", default="45m", help="wall time per task (default 45m)")
    parser.add_argument("--lr-search", type=int, default=0, help="K learning rates per cell")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--tiny", action="store_true", help="a smoke test with tiny settings")
    args = parser.parse_args()

    # Both tasks at the size of the lstm model with 64 units; steps cap each run, the budget may
    # stop it earlier. Recall at the task's defaults (chrono: the LSTM solves gap 100 within 500
    # steps); adding with forget-gate bias 1 for every LSTM (Jozefowicz et al. 2015).
    tasks = {
        "recall": ["--task", "recall", "--gap", "100", "--embed-size", "16", "--steps", "1000"],
        # T = 50, batch 64: T = 100 at batch 32 left every cell on the 1/6 baseline after 3000 steps
        # (a first run of this script), so the table said nothing about the cells.
        "adding": [
            "--task",
            "adding",
            "--length",
            "50",
            "--steps",
            "2000",
            "--lr",
            "5e-3",
            "--batch-size",
            "64",
            "--forget-bias",
            "1",
        ],
    }
    common = [
        "--cells",
        args.cells,
        "--seeds",
        str(args.seeds),
        "--budget",
        args.budget,
        "--lr-search",
        str(args.lr_search),
        "--workers",
        str(args.workers),
        "--hidden-size",
        "64",
        "--batch-size",
        "32",
        "--eval-every",
        "250",
        "--checkpoint-every",
        "250",
    ]
    suffix = ""
    if args.tiny:
        common = [
            "--cells",
            "lstm,coupled,gru,rnn",
            "--seeds",
            "2",
            "--hidden-size",
            "8",
            "--batch-size",
            "4",
            "--eval-batches",
            "2",
            "--eval-every",
            "5",
            "--checkpoint-every",
            "5",
            "--workers",
            str(args.workers),
            "--lr-search",
            str(min(args.lr_search, 2)),
        ]
        tasks = {
            name: [*flags, "--steps", "10", "--embed-size", "4"]
            for name, flags in {
                "recall": ["--task", "recall", "--gap", "5"],
                "adding": ["--task", "adding", "--length", "10"],
            }.items()
        }
        suffix = "-tiny"

    for name, flags in tasks.items():
        if name not in args.tasks.split(","):
            continue
        out = RESULTS / f"odyssey-{name}{suffix}"
        print(f"\n=== {name}: {' '.join(flags)} -> {out}")
        study_cli.main([*common, *flags, "--out", str(out)])

    # The post's claim, looked at on the full run: does the LSTM remember across the gap and the RNN
    # not? Printed from the table, not asserted.
    if not args.tiny and "recall" in args.tasks.split(","):
        table = RESULTS / "odyssey-recall" / "results.csv"
        rows = {r["cell"]: r for r in csv.DictReader(table.open())}
        for cell in rows:
            print(f"recall at gap 100: {cell:9} {100 * float(rows[cell]['accuracy_mean']):5.1f} %")


if __name__ == "__main__":
    main()
