"""The demo, run tiny: its report is a static folder whose every link resolves inside it."""

from __future__ import annotations

import re

import pytest

from lstmlab.cli.demo import run_demo
from lstmlab.nn.registry import VARIANTS, make_layer

PNG = b"\x89PNG\r\n\x1a\n"


def test_tiny_demo_writes_a_self_contained_report(tmp_path, capsys):
    out = tmp_path / "report"
    assert (
        run_demo(
            out, minutes=0.01, gaps=(2,), recall_minutes=0.01, hidden_size=16, max_chars=60_000
        )
        == 0
    )
    assert f"report: {(out / 'index.html').resolve()}" in capsys.readouterr().out
    page = (out / "index.html").read_text()
    links = set(re.findall(r'(?:href|src)="([^"#]+)"', page))
    assert all(not re.match(r"[a-z]+:|/", link) for link in links), links  # relative only
    for link in links:
        assert (out / link).is_file(), link
    for png in (
        "lm-loss.png",
        "recall-by-gap.png",
        "gradient-flow-init.png",
        "gradient-flow-trained.png",
        "forget-gates.png",
    ):
        assert png in links and (out / png).read_bytes()[:8] == PNG, png
    assert "explore.html" in links and (out / "explore.html").stat().st_size < 4_000_000
    drawn = {name for name in VARIANTS if hasattr(make_layer(name, 2, 2), "cells")}
    assert {"lstm", "gru", "rnn", "peephole"} <= drawn
    assert {f"diagrams/{name}.svg" for name in drawn} | {"diagrams/unrolled-lstm.svg"} <= links
    assert (out / "diagrams" / "lstm.svg").read_text().lstrip().startswith("<?xml")
    # Stopped by the clock before its first evaluation, the model still shows a sample.
    assert (out / "samples.txt").read_text().startswith("# step ") and "<pre>def " in page
    assert re.search(r"<td>LSTM, forget bias 1</td><td>\d\.\de-\d\d</td>", page)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"gaps": ()}, "gaps must be"),
        ({"gaps": (5, -1)}, "gaps must be"),
        ({"cells": ("lstm", "tree")}, "cells must be"),
    ],
)
def test_bad_options_fail_before_any_training(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_demo(tmp_path / "report", **kwargs)
    assert not (tmp_path / "report").exists()


def test_demo_recall_trains_each_gap_from_scratch_and_the_demo_runs_again(tmp_path):
    """Each gap is its own run from scratch with the task's defaults (chrono initialisation); a
    second demo into the same folder starts every run afresh (one metrics log per run, not two
    appended)."""
    from lstmlab.train.checkpoint import read_config

    out = tmp_path / "report"
    kwargs = dict(
        minutes=0.01,
        gaps=(3, 2),
        cells=("lstm",),
        recall_minutes=0.01,
        hidden_size=16,
        max_chars=60_000,
    )
    assert run_demo(out, **kwargs) == 0
    runs = out / "runs"
    for run in ("recall-lstm-2", "recall-lstm-3"):
        train = read_config(runs / run)["train"]
        assert train["init_from"] is None and train["init"] == "chrono", run
    assert run_demo(out, **kwargs) == 0
    for run in ("char-lstm", "recall-lstm-2", "recall-lstm-3"):
        steps = [
            line
            for line in (runs / run / "metrics.jsonl").read_text().splitlines()
            if '"loss"' in line and '"valid_' not in line
        ]
        numbers = [int(re.search(r'"step": (\d+)', line).group(1)) for line in steps]
        assert numbers == list(range(1, len(numbers) + 1)), run
