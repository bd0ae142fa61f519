"""``lstmlab study``: the command line of :mod:`lstmlab.study` -- its flags, plus every shared
training setting of :class:`~lstmlab.train.TrainConfig` as a flag.

    lstmlab study --cells lstm,gru,rnn --task recall --seeds 5 --budget 30m --out studies/recall
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

from lstmlab.study import __doc__ as study_doc
from lstmlab.study.runner import run_study
from lstmlab.study.runs import PER_RUN
from lstmlab.study.settings import GREFF_CELLS, Study
from lstmlab.train import TrainConfig
from lstmlab.train.settings import flag_help, task_config

__all__ = ["parse_budget", "add_arguments", "base_config", "run", "main"]


def parse_budget(text: str) -> float:
    """Minutes from ``"90s"``, ``"10m"``, ``"1.5h"`` or a bare number of minutes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*", text)
    if not match:
        raise ValueError(f"budget must be a duration like 90s, 10m or 1.5h; got {text!r}")
    return float(match[1]) * {"s": 1 / 60, "m": 1, "": 1, "h": 60}[match[2]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cells",
        default=",".join(GREFF_CELLS),
        help="comma-separated cells (default: Greff et al.'s eight, gru, rnn)",
    )
    parser.add_argument("--seeds", type=int, default=5, help="runs per cell (default: 5)")
    parser.add_argument(
        "--budget",
        type=parse_budget,
        default=0.0,
        help="the study's wall time, split evenly over the runs: 90s, 10m, 1.5h "
        "(default: none; --steps alone)",
    )
    parser.add_argument(
        "--params",
        type=int,
        default=None,
        help="parameters per model (default: the lstm model at --hidden-size)",
    )
    parser.add_argument(
        "--lr-search",
        type=int,
        default=0,
        metavar="K",
        help="try K log-uniform learning rates per cell on seed 0 (default: 0)",
    )
    parser.add_argument("--lr-min", type=float, default=1e-4, help="search range (default: 1e-4)")
    parser.add_argument("--lr-max", type=float, default=3e-2, help="search range (default: 3e-2)")
    parser.add_argument("--workers", type=int, default=1, help="runs at once (default: 1)")
    parser.add_argument(
        "--metric",
        default=None,
        help="headline metric (default: accuracy if the task has it, else loss)",
    )
    parser.add_argument("--out", default="studies/study", help="the study's folder")
    for f in dataclasses.fields(TrainConfig):  # the shared training settings
        if f.name in PER_RUN:
            continue
        flag = "--" + f.name.replace("_", "-")
        help = flag_help(f)
        if isinstance(f.default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help
            )
        else:
            parser.add_argument(
                flag,
                type=type(f.default) if f.default is not None else str,
                default=None,
                help=help,
            )


def base_config(args: argparse.Namespace) -> TrainConfig:
    """The settings every run of the study shares: the flags given, then the task's defaults
    (:func:`~lstmlab.train.settings.task_config`: ``--task recall`` trains with chrono
    initialisation unless ``--init`` says otherwise), then :class:`~lstmlab.train.TrainConfig`'s."""
    return task_config(
        **{
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(TrainConfig)
            if f.name not in PER_RUN and getattr(args, f.name) is not None
        }
    )


def run(args: argparse.Namespace) -> int:
    base = base_config(args)
    study = Study(
        base,
        cells=[c.strip() for c in args.cells.split(",") if c.strip()],
        seeds=args.seeds,
        params=args.params,
        lr_search=args.lr_search,
        lr_range=(args.lr_min, args.lr_max),
        budget_minutes=args.budget,
        workers=args.workers,
        metric=args.metric,
        out=args.out,
    )

    def report(r: dict) -> None:
        print(
            f"  {r['name']:22} {r['steps']:6} steps {r['seconds']:7.1f} s  "
            + "  ".join(f"{k} {v:.4g}" for k, v in r["valid"].items()),
            flush=True,
        )

    run_study(study, on_result=report)
    print(
        "\n"
        + (Path(study.out) / "results.md").read_text()
        + f"\n{study.out}/results.csv, results.md, boxplot.png"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lstmlab study", description=study_doc.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
