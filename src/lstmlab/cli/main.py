"""The ``lstmlab`` command line: train, sample, eval, demo, bench, cells."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import tomllib
import warnings
from pathlib import Path

from lstmlab.nn.registry import VARIANTS


def _add_train_settings(parser: argparse.ArgumentParser) -> None:
    from lstmlab.train import TrainConfig

    parser.add_argument("--config", type=Path, help="a TOML file of settings (flags override it)")
    from lstmlab.train.settings import flag_help

    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        help = flag_help(f)
        if isinstance(f.default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help
            )
        else:
            kind = type(f.default) if f.default is not None else str
            parser.add_argument(flag, type=kind, default=None, help=help)


def _given_settings(args: argparse.Namespace) -> dict:
    """The settings the user gave: from ``--config`` (TOML), then the flags on the command line
    (a flag not given is None, so it never stands in for a setting)."""
    from lstmlab.train import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values: dict = {}
    if args.config is not None:
        if not args.config.is_file():
            raise FileNotFoundError(f"config file not found: {args.config}")
        try:
            values = tomllib.loads(args.config.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{args.config}: not valid TOML ({e})") from None
        if unknown := sorted(set(values) - names):
            raise ValueError(
                f"{args.config}: unknown settings {', '.join(unknown)}; "
                f"known: {', '.join(sorted(names))}"
            )
    values.update({k: getattr(args, k) for k in names if getattr(args, k) is not None})
    return values


def train_config(args: argparse.Namespace, base: dict | None = None):
    """Settings from ``--config`` (TOML), then the flags given on the command line, over
    ``base`` (a resumed run's own settings) or else the task's defaults and then the general
    ones (:func:`~lstmlab.train.settings.task_config`)."""
    from lstmlab.train import TrainConfig
    from lstmlab.train.settings import task_config

    if base is None:
        return task_config(**_given_settings(args))
    return TrainConfig(**{**base, **_given_settings(args)})


def _resumed_config(args: argparse.Namespace):
    """The settings of the run ``--resume`` continues: its own, but for the budget and schedule
    settings given. Another setting given with a value other than the run's is an error: the
    run is rebuilt from its checkpoint, so it could not take effect."""
    from lstmlab.train import SCHEDULE, TrainConfig
    from lstmlab.train.checkpoint import read_config
    from lstmlab.train.run_folder import RunLock
    from lstmlab.train.settings import BUDGET

    given = _given_settings(args)
    out = Path(given.get("out", TrainConfig().out))
    try:
        stored = read_config(out / "checkpoint")["train"]
    except FileNotFoundError:
        if os.environ.get("RANK", "0") == "0":  # a run that has not saved yet holds it?
            with RunLock(out):
                pass
        raise
    # A setting newer than the run's checkpoint has its default there.
    stored = {f.name: f.default for f in dataclasses.fields(TrainConfig)} | dict(stored)
    fixed = [
        k for k, v in given.items() if k not in (*BUDGET, *SCHEDULE, "out") and v != stored.get(k)
    ]
    if fixed:
        differ = ", ".join(
            f"--{k.replace('_', '-')} (the run has {stored.get(k)!r})" for k in fixed
        )
        raise ValueError(
            f"--resume continues the run in {out} with its own settings; only --steps, "
            f"--minutes and the schedule flags (--lr-decay, --decay-every, --decay-start) may "
            f"change, not {differ}"
        )
    return train_config(args, base=stored), any(k in given for k in SCHEDULE)


def cmd_train(args: argparse.Namespace) -> int:
    from lstmlab.train import RunStopped, train

    # On --resume the run keeps its own settings (not the defaults) but for the budget and
    # schedule flags given; schedule flags change its schedule from here on.
    cfg, reschedule = _resumed_config(args) if args.resume else (train_config(args), False)
    with warnings.catch_warnings():  # e.g. a corpus file skipped: one plain line each
        warnings.showwarning = _warning_line
        try:
            metrics = train(
                cfg, resume=args.resume, overwrite=args.overwrite, reschedule=reschedule
            )
        except RunStopped as stop:
            resume = f"lstmlab train --resume --out {shlex.quote(str(cfg.out))}"
            print(f"lstmlab train: {stop}; continue it with: {resume}", file=sys.stderr)
            return stop.exit_code
    print(f"done: {cfg.out}/checkpoint  " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    return 0


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Show a warning as one line of the command's own (no source location)."""
    print(f"lstmlab train: warning: {message}", file=sys.stderr)


def cmd_sample(args: argparse.Namespace) -> int:
    from lstmlab.models.generate import sample
    from lstmlab.train import load_trained

    model, vocab, cfg = load_trained(args.checkpoint)
    _need_vocab(args.checkpoint, vocab, cfg)
    for piece in sample(
        model,
        vocab,
        args.prompt,
        length=args.length,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
    ):
        print(piece, end="", flush=True)
    print()
    return 0


def _need_vocab(path: Path, vocab, cfg) -> None:
    # a task's model (copy's is a LanguageModel too) has categories, not a vocabulary of text
    if vocab is None:
        raise ValueError(f"{path}: a model of the {cfg.task!r} task, not a language model of text")


def cmd_eval(args: argparse.Namespace) -> int:
    from lstmlab.train import evaluate_checkpoint

    for k, v in evaluate_checkpoint(args.checkpoint, args.split).items():
        print(f"{k:16} {v:.4f}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from lstmlab.cli.export import export_onnx

    for path in export_onnx(args.checkpoint, args.out):
        print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lstmlab.cli.demo import run_demo

    return run_demo(Path(args.out), minutes=args.minutes)


def cmd_explore(args: argparse.Namespace) -> int:
    from lstmlab.train import load_trained
    from lstmlab.viz.explore import activations, write_explorer

    if not args.text.is_file():
        raise FileNotFoundError(f"text file not found: {args.text}")
    model, vocab, cfg = load_trained(args.checkpoint)
    _need_vocab(args.checkpoint, vocab, cfg)
    text = args.text.read_text(encoding="utf-8", errors="replace")
    raw = args.text.read_bytes()  # invalid sequences: U+FFFD when replaced, nothing when ignored
    as_read, valid = raw.decode("utf-8", "replace"), raw.decode("utf-8", "ignore")
    replaced = as_read.count("\ufffd") - valid.count("\ufffd")
    with warnings.catch_warnings(record=True) as caught:  # printed below, as one plain line
        warnings.simplefilter("always")
        acts = activations(
            model, vocab, text, max_tokens=args.max_tokens, max_values=args.max_values
        )
    for warning in caught:
        print(f"lstmlab explore: note: {warning.message}", file=sys.stderr)
    page = write_explorer(
        acts, args.out, title=f"lstmlab explorer: {args.text.name}", replaced=replaced
    )
    print(
        f"wrote {page} ({page.stat().st_size / 1e6:.1f} MB, {len(acts['tokens'])} of "
        f"{acts['total']} tokens); open it in a browser"
    )
    return 0


def cmd_diagram(args: argparse.Namespace) -> int:
    from lstmlab.nn.registry import make_layer
    from lstmlab.viz.diagram import draw_cell, draw_unrolled

    layer = make_layer(args.cell, 8, 16, num_layers=2)
    # A Stack has one cell per layer: draw the top one (a depth-gated layer's depth gate reads
    # the layer below). A GridLSTM has one Cell for the whole column: draw a one-layer column.
    cells = getattr(layer, "cells", None)
    if cells is None and hasattr(layer, "cell"):
        cells = [make_layer(args.cell, 8, 16).cell]
    cells = cells[-1:] if cells else []
    if not cells:
        raise ValueError(
            f"cell {args.cell!r} has no single cell to draw; choose one of: {', '.join(VARIANTS)}"
        )
    path = (
        draw_unrolled(cells[0], args.out, steps=args.unrolled)
        if args.unrolled
        else draw_cell(cells[0], args.out)
    )
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmlab", description="The LSTM family of Olah's 'Understanding LSTM Networks'."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model on a task or a corpus (BPTT / truncated BPTT)")
    _add_train_settings(p)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (its settings; --steps, --minutes and the "
        "schedule flags --lr-decay/--decay-every/--decay-start may change)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an --out that already holds a run, replacing it",
    )
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("sample", help="generate text from a trained language model")
    p.add_argument("checkpoint", type=Path, help="a run's checkpoint folder")
    p.add_argument("--prompt", default="", help="text to start from")
    p.add_argument("--length", type=int, default=300, help="tokens to generate")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser("eval", help="evaluate a checkpoint on its validation data")
    p.add_argument("checkpoint", type=Path)
    p.add_argument(
        "--split",
        choices=("valid", "test"),
        default="valid",
        help="test: the whole test split (text: one stream, every token)",
    )
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser(
        "export", help="write a trained checkpoint as an ONNX model (run it with onnxruntime)"
    )
    p.add_argument("checkpoint", type=Path, help="a run's checkpoint folder")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="the file format")
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path("model.onnx"),
        help="the file to write (default: model.onnx; a language model's vocab.json beside it)",
    )
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("demo", help="the main job: train, sample, compare cells, write a report")
    p.add_argument("--out", default="report", help="report folder (default: report)")
    p.add_argument("--minutes", type=float, default=3.5, help="time for the language model")
    p.set_defaults(run=cmd_demo)

    from lstmlab.viz.explore import MAX_TOKENS, MAX_VALUES

    p = sub.add_parser(
        "explore",
        help="a page to explore a language model's units and gates over a text (one HTML file)",
    )
    p.add_argument("checkpoint", type=Path, help="a run's checkpoint folder (a language model)")
    p.add_argument("--text", type=Path, required=True, help="the text file to read")
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path("explore.html"),
        help="the page to write (default: explore.html)",
    )
    p.add_argument(
        "--max-tokens",
        type=int,
        default=MAX_TOKENS,
        help=f"read at most this many tokens (default: {MAX_TOKENS})",
    )
    p.add_argument(
        "--max-values",
        type=int,
        default=MAX_VALUES,
        help=f"... and keep at most this many values in the page (default: {MAX_VALUES})",
    )
    p.set_defaults(run=cmd_explore)

    from lstmlab.cli import bench
    from lstmlab.study import cli as study_cli

    p = sub.add_parser("bench", help="time every cell against torch.nn.LSTM (speed, memory)")
    bench.add_arguments(p)
    p.set_defaults(run=bench.run)

    p = sub.add_parser(
        "study",
        help="which variant? every cell on one task, same parameters, "
        "steps and seeds, with a significance test against the LSTM",
    )
    study_cli.add_arguments(p)
    p.set_defaults(run=study_cli.run)

    p = sub.add_parser("diagram", help="draw a cell in the style of Olah's post (SVG or PNG)")
    p.add_argument("cell", help=f"a cell of `lstmlab cells` ({', '.join(VARIANTS)})")
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path("cell.svg"),
        help="output file, .svg or .png (default: cell.svg)",
    )
    p.add_argument(
        "--unrolled",
        type=int,
        default=0,
        metavar="N",
        help="draw N copies unrolled in time instead of one cell",
    )
    p.set_defaults(run=cmd_diagram)

    sub.add_parser("cells", help="list the built-in cells").set_defaults(
        run=lambda a: print("\n".join(f"{k:10} {v[2]}" for k, v in VARIANTS.items())) or 0
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from lstmlab.train import TrainingError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError, TrainingError) as e:
        # one line: a message may quote a value from a file, newlines and all
        print(f"lstmlab {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nlstmlab {args.command}: interrupted", file=sys.stderr)
        return 130
