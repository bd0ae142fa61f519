"""Plots from runs (matplotlib, PNG or SVG by the file's suffix)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'lstmlab[plots]'") from None
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a run's ``metrics.jsonl``."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_training_curves(
    runs: Mapping[str, str | Path], out: str | Path, valid_key: str = "valid_loss"
) -> Path:
    """Training loss (smoothed) and validation loss against step, one line per run.

    ``runs`` maps a label to a ``metrics.jsonl`` path.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, path in runs.items():
        records = read_metrics(path)
        train = [(r["step"], r["loss"]) for r in records if "loss" in r]
        valid = [(r["step"], r[valid_key]) for r in records if valid_key in r]
        if train:
            steps, losses = zip(*train)
            ax.plot(steps, _smooth(list(losses)), label=f"{label} train", alpha=0.8)
        if valid:
            steps, losses = zip(*valid)
            ax.plot(steps, losses, "o-", label=f"{label} validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    return _finish(plt, fig, ax, out)


def plot_accuracy_by_gap(
    results: Mapping[str, Mapping[int, float]], out: str | Path, chance: float | None = None
) -> Path:
    """Accuracy on ``recall`` against the gap, one line per cell: the post's claim, measured."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    styles = ("o-", "s--", "^:", "D-.")
    for k, (cell, by_gap) in enumerate(results.items()):
        gaps = sorted(by_gap)
        # shrinking markers and line styles keep coinciding lines (two cells at 100 %) visible
        ax.plot(
            gaps,
            [100 * by_gap[g] for g in gaps],
            styles[k % len(styles)],
            label=cell,
            markersize=max(9 - 2 * k, 3),
            linewidth=max(2.5 - 0.5 * k, 1),
        )
    if chance is not None:
        ax.axhline(100 * chance, color="gray", linestyle="--", label="chance")
    ax.set_xlabel("gap (filler words between 'I grew up in France' and 'I speak fluent ...')")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    return _finish(plt, fig, ax, out)


def _finish(plt, fig, ax, out: str | Path) -> Path:
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)


def _smooth(values: list[float], weight: float = 0.9) -> list[float]:
    out, running = [], values[0]
    for v in values:
        running = weight * running + (1 - weight) * v
        out.append(running)
    return out
