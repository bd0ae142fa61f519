"""The picture of a variant study: one box per cell over seeds (``lstmlab study``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from lstmlab.viz.plots import _pyplot


def plot_study(
    values: Mapping[str, Sequence[float]], out: str | Path, ylabel: str, title: str = ""
) -> Path:
    """Box plots of a final metric, one per cell, every seed's value drawn as a point on its box
    (a study has a handful of seeds: the points say more than the quartiles).

    Example::

        >>> plot_study({"lstm": [0.91, 0.95], "rnn": [0.1, 0.12]}, "box.png", "accuracy")
    """
    plt = _pyplot()
    cells = list(values)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(cells) + 2), 4))
    ax.boxplot([list(values[c]) for c in cells], showfliers=False)
    ax.set_xticks(range(1, len(cells) + 1), cells, rotation=30)
    for k, cell in enumerate(cells, start=1):
        n = len(values[cell])
        spread = [k + 0.15 * (j - (n - 1) / 2) / max(n - 1, 1) for j in range(n)]  # side by side
        ax.plot(spread, list(values[cell]), "o", color="tab:blue", alpha=0.6, markersize=4)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)
