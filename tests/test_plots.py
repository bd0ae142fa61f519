"""Plots write real image files from run logs."""

from __future__ import annotations

import json

from lstmlab.viz.plots import plot_accuracy_by_gap, plot_training_curves, read_metrics


def test_training_curves_and_accuracy_by_gap(tmp_path):
    log = tmp_path / "metrics.jsonl"
    records = [{"step": s, "loss": 3.0 / s} for s in range(1, 21)] + [
        {"step": 20, "valid_loss": 0.2}
    ]
    log.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert read_metrics(log) == records
    png = plot_training_curves({"run": log}, tmp_path / "curve.png")
    svg = plot_accuracy_by_gap(
        {"rnn": {5: 1.0, 30: 0.1}, "lstm": {5: 1.0, 30: 1.0}}, tmp_path / "gap.svg", chance=1 / 12
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "lstm" in text and "rnn" in text
