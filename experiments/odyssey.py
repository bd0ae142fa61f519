"""A search-space odyssey on a CPU: which LSTM variant should I use?

Greff et al. 2015 ("LSTM: A Search Space Odyssey", IEEE TNNLS) trained eight LSTM variants on
speech, handwriting and music and found none clearly better than the vanilla LSTM, while
removing the forget gate (NFG) or the output activation (NOAF) hurt most. This script asks the
same question on two of the post's long-range problems, with every cell held to the same
parameter count, steps, time and seeds (see `lstmlab study --help`):

1. recall at gap 30 ("I grew up in France ... I speak fluent *French*");
2. the adding problem at T = 50 (Hochreiter & Schmidhuber 1997, exp. 4).

    python experiments/odyssey.py                  # the full study: about 2 x --budget
    python experiments/odyssey.py --lr-search 4    # with Greff et al.'s learning-rate search
    python experiments/odyssey.py --tiny           # a smoke test: seconds, numbers meaningless

Writes experiments/results/odyssey-recall/ and odyssey-adding/ (results.md, results.csv,
boxplot.png, every run's metrics.jsonl) and prints both tables. Stopped, it resumes where it was
when run again with the same arguments.
"""

import argparse
import csv
from pathlib import Path

from lstmlab.study import cli as study_cli

CELLS = "lstm,peephole,coupled,nig,nfg,nog,niaf,noaf,fgr,gru,rnn"
RESULTS = Path(__file__).resolve().parent / "results"

parser = argparse.ArgumentParser(description="Every LSTM variant on recall and adding.")
parser.add_argument("--seeds", type=int, default=3)
parser.add_argument("--budget", default="45m", help="wall time per task (default 45m)")
parser.add_argument("--lr-search", type=int, default=0, help="K learning rates per cell")
parser.add_argument("--workers", type=int, default=1)
parser.add_argument("--tiny", action="store_true", help="a smoke test with tiny settings")
args = parser.parse_args()

# Both tasks at the size of the lstm model with 64 units, forget-gate bias 1 for every LSTM
# (Jozefowicz et al. 2015); steps cap each run, the budget may stop it earlier.
tasks = {
    "recall": ["--task", "recall", "--gap", "30", "--embed-size", "16", "--steps", "3000"],
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
    ],
}
common = [
    "--cells",
    CELLS,
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
    "--forget-bias",
    "1",
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
    out = RESULTS / f"odyssey-{name}{suffix}"
    print(f"\n=== {name}: {' '.join(flags)} -> {out}")
    study_cli.main([*common, *flags, "--out", str(out)])

# The post's claim, looked at on the full run: does the LSTM remember across the gap and the RNN
# not? (On 2026-11-24, with 3000 steps at lr 2e-3, neither the LSTM nor the RNN had left chance,
# while NIG, NFG, NOG and FGR had solved it: see experiments/odyssey.md. So this prints, it does
# not assert.)
if not args.tiny:
    table = RESULTS / "odyssey-recall" / "results.csv"
    rows = {r["cell"]: r for r in csv.DictReader(table.open())}
    for cell in rows:
        print(f"recall at gap 30: {cell:9} {100 * float(rows[cell]['accuracy_mean']):5.1f} %")
