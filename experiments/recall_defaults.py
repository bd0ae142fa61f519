"""What takes the LSTM off the recall task's plateau, from scratch (no curriculum).

Runs ``lstmlab train --task recall`` once per row of a grid of settings -- initialisation
(forget-gate bias, chrono, orthogonal), learning rate, batch size, gradient clipping, hidden
size -- and records, per run, the exact command, its wall time, the validation accuracy at each
evaluation and the first step at which it reached 99 %. The results go to
``experiments/results/recall_defaults.json`` and a table in ``recall_defaults.md``.

Stages (``--stage``, default all):

- ``explore`` -- gap 30, 1000 steps, the small model of the plateau (hidden 64, embed 16): which
  single change leaves the plateau;
- ``gap100`` -- gap 100, 3000 steps: the candidates at the length the defaults must hold for;
- ``defaults`` -- ``lstmlab train --task recall --gap 100`` with no other setting, LSTM and RNN,
  three seeds: the command line's own defaults;
- ``demo`` -- the demo's small recall model from scratch with chrono, LSTM and RNN, gaps 5 to
  200, 1500 steps: which gaps show the RNN at chance and the LSTM near 100 %.

Each run is one process with one torch thread (``OMP_NUM_THREADS=1``), one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from lstmlab.train.checkpoint import read_config

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROOT = HERE.parent  # the runs start here, so the commands recorded name relative folders
RUNS = Path("experiments", "runs", "recall_defaults")
LSTMLAB = [sys.executable, "-m", "lstmlab.cli"]  # the `lstmlab` command of this Python

SMALL = ["--cell", "lstm", "--hidden-size", "64", "--embed-size", "16"]
EXPLORE = {  # name -> flags, after: --task recall --gap 30 --steps 1000, the small model
    "baseline (forget bias 1)": [],
    "forget bias 0 (torch's)": ["--forget-bias", "0"],
    "forget bias 2": ["--forget-bias", "2"],
    "forget bias 3": ["--forget-bias", "3"],
    "chrono, T_max = length": ["--init", "chrono"],
    "orthogonal": ["--init", "orthogonal"],
    "chrono+orthogonal": ["--init", "chrono+orthogonal"],
    "lr 0.01": ["--lr", "0.01"],
    "lr 0.005": ["--lr", "0.005"],
    "lr 0.0005": ["--lr", "0.0005"],
    "batch 128": ["--batch-size", "128"],
    "batch 256": ["--batch-size", "256"],
    "clip 1": ["--clip", "1"],
    "no clipping": ["--clip", "0"],
    "hidden 128": ["--hidden-size", "128"],
    "hidden 256": ["--hidden-size", "256"],
    "embed 64": ["--embed-size", "64"],
}
GAP100 = {  # name -> flags, after: --task recall --gap 100 --steps 3000
    "small, forget bias 1": SMALL,
    "small, forget bias 3": [*SMALL, "--forget-bias", "3"],
    "small, chrono": [*SMALL, "--init", "chrono"],
    "forget bias 1": [],
    "forget bias 2": ["--forget-bias", "2"],
    "forget bias 3": ["--forget-bias", "3"],
    "chrono": ["--init", "chrono"],
    "chrono+orthogonal": ["--init", "chrono+orthogonal"],
    "chrono, lr 0.005": ["--init", "chrono", "--lr", "0.005"],
    "rnn, chrono off": ["--cell", "rnn"],
}
SEEDS = (0, 1, 2)
# The demo's recall runs (hidden 64, embed 16, lr 0.003, batch 32) from scratch with chrono,
# one run per gap, as many steps as its time budget gives (~1500 at gap 100 on one thread).
DEMO = ["--hidden-size", "64", "--embed-size", "16", "--lr", "0.003", "--init", "chrono"]
DEMO_GAPS = (5, 15, 30, 60, 100, 200)
# A run that fails for another reason than its settings (a source tree caught mid-edit, say)
# is tried again after a wait.
RETRIES, WAIT = 10, 30
STAGES = ("explore", "gap100", "defaults", "demo")


def run(name: str, flags: list[str], out: Path) -> dict:
    """One ``lstmlab train --task recall`` process; its command, wall time and validation
    curve."""
    args = ["train", "--task", "recall", *flags, "--out", str(out), "--overwrite"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for attempt in range(RETRIES + 1):
        start = time.perf_counter()
        done = subprocess.run(
            [*LSTMLAB, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - start
        if done.returncode == 0:
            break
        if attempt == RETRIES or "ValueError" in done.stderr:  # a bad setting: no retry
            raise SystemExit(f"{name}: lstmlab train failed:\n{done.stderr[-3000:]}")
        print(f"{name}: failed, retrying in {WAIT} s: {done.stderr.strip()[-200:]}", flush=True)
        time.sleep(WAIT)
    curve = [
        (r["step"], r["valid_accuracy"])
        for r in map(json.loads, (ROOT / out / "metrics.jsonl").read_text().splitlines())
        if "valid_accuracy" in r
    ]
    reached = next((step for step, acc in curve if acc >= 0.99), None)
    settings = read_config(ROOT / out / "checkpoint")["train"]
    record = {
        "name": name,
        "command": "lstmlab " + shlex.join(args),
        "wall_s": round(wall, 1),
        "final_accuracy": curve[-1][1],
        "best_accuracy": max(acc for _, acc in curve),
        "step_99": reached,
        "curve": curve,
        "settings": settings,
    }
    print(
        f"{name:34s} acc {record['final_accuracy']:.3f}  99% at {reached}  {wall:6.1f}s",
        flush=True,
    )
    return record


def table(records: list[dict]) -> str:
    lines = [
        "| stage | run | seed | accuracy (final) | first step >= 99 % | wall s | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['stage']} | {r['name']} | {r['settings']['seed']} | {r['final_accuracy']:.3f} "
            f"| {r['step_99'] or '-'} | {r['wall_s']} | `{r['command']}` |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=(*STAGES, "all"), default="all")
    parser.add_argument(
        "--again", action="store_true", help="rerun the runs already in the results file"
    )
    args = parser.parse_args()
    stages = STAGES if args.stage == "all" else (args.stage,)
    path = RESULTS / "recall_defaults.json"
    records = json.loads(path.read_text()) if path.exists() else []
    if args.again:
        records = [r for r in records if r["stage"] not in stages]

    def pinned(flags: list[str]) -> list[str]:
        """The explored settings name their initialisation: 'default' unless the row sets one
        (recall's own default is chrono)."""
        return flags if "--init" in flags else ["--init", "default", *flags]

    def plan(stage: str) -> list[tuple[str, list[str], Path]]:
        if stage == "explore":
            more = ["--steps", "1000", "--eval-every", "250"]
            return [
                (name, ["--gap", "30", *SMALL, *pinned(flags), *more], RUNS / f"explore{i}")
                for i, (name, flags) in enumerate(EXPLORE.items())
            ]
        if stage == "gap100":
            more = ["--steps", "3000", "--eval-every", "250"]
            return [
                (name, ["--gap", "100", *pinned(flags), *more], RUNS / f"gap{i}")
                for i, (name, flags) in enumerate(GAP100.items())
            ]
        if stage == "demo":
            more = ["--steps", "1500", "--eval-every", "250"]
            return [
                (
                    f"demo, {cell}, gap {gap}",
                    ["--gap", str(gap), "--cell", cell, *DEMO, *more],
                    RUNS / f"demo-{cell}-{gap}",
                )
                for gap in DEMO_GAPS
                for cell in ("lstm", "rnn")
            ]
        return [  # the command line's defaults: nothing but the gap, the cell and the seed
            (
                f"defaults, {cell}",
                ["--gap", "100", "--cell", cell, "--seed", str(seed)],
                RUNS / f"defaults-{cell}-{seed}",
            )
            for cell in ("lstm", "rnn")
            for seed in SEEDS
        ]

    for stage in stages:
        for name, flags, out in plan(stage):
            command = "lstmlab " + shlex.join(
                ["train", "--task", "recall", *flags, "--out", str(out), "--overwrite"]
            )
            if any(r["stage"] == stage and r["command"] == command for r in records):
                continue  # done before: kept (--again reruns it)
            records.append({"stage": stage, **run(name, flags, out)})
            RESULTS.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(records, indent=1) + "\n")
            (RESULTS / "recall_defaults.md").write_text(table(records))


if __name__ == "__main__":
    main()
