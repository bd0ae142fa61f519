"""Attention weights as a heat map: which source token each output token looked at."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from lstmlab.viz.plots import _pyplot


def plot_attention(
    weights: torch.Tensor,
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Draw one sentence's attention weights (Bahdanau et al. 2015, fig. 3) to ``path``.

    Args:
        weights: (T, S) -- row t holds output token t's weights over the source; extra rows or
            columns (padding, steps after EOS) are cut to the token lists.
        src_tokens: the S' <= S source tokens (columns), e.g. ``list("24 November 2026")``.
        tgt_tokens: the T' <= T output tokens (rows), e.g. ``[*"2026-11-24", "</s>"]``.
        path: the image file; PNG or SVG by its suffix.
        title: optional title above the map.

    Returns:
        ``Path(path)``.

    Example::

        >>> tokens, weights = model.greedy(src[:1], src_lengths[:1], max_len=12)
        >>> plot_attention(weights[0], list("24 November 2026"), [*"2026-11-24", "</s>"], "a.png")
    """
    if not isinstance(weights, torch.Tensor) or weights.dim() != 2:
        raise ValueError(
            f"weights must be a 2-D tensor (T, S) of one sentence; got "
            f"{getattr(weights, 'shape', type(weights).__name__)}"
        )
    rows, cols = len(tgt_tokens), len(src_tokens)
    if rows == 0 or cols == 0 or rows > weights.shape[0] or cols > weights.shape[1]:
        raise ValueError(
            f"need 1 <= len(tgt_tokens) <= T and 1 <= len(src_tokens) <= S for "
            f"weights (T, S) = {tuple(weights.shape)}; got {rows} target and "
            f"{cols} source tokens"
        )
    data = weights[:rows, :cols].detach().float().cpu().numpy()
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * cols + 1.5), max(3.0, 0.35 * rows + 1.0)))
    image = ax.imshow(data, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(cols), [_show(s) for s in src_tokens])
    ax.set_yticks(range(rows), [_show(t) for t in tgt_tokens])
    ax.tick_params(axis="x", top=True, bottom=False, labeltop=True, labelbottom=False)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, label="attention weight", fraction=0.04, pad=0.03)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def _show(token: str) -> str:
    """A visible label: a space would vanish from the axis."""
    return "␣" if token == " " else token
