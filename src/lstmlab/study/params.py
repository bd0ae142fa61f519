"""Matching a study's models to one parameter count: each cell gets the hidden size whose whole
model comes closest to the target (``lstmlab study``)."""

from __future__ import annotations

import torch


def parameter_count(model_config: dict, cell: str, hidden_size: int) -> int:
    """``sum(p.numel())`` of the model ``model_config`` describes with this cell and hidden size.
    Built on the meta device: shapes only, no memory, no initialisation cost."""
    from lstmlab.models.build import build_model

    with torch.device("meta"):
        model = build_model({**model_config, "cell": cell, "hidden_size": hidden_size})
    return sum(p.numel() for p in model.parameters())


def match_hidden_size(model_config: dict, cell: str, target: int) -> tuple[int, int]:
    """The hidden size whose model has the parameter count closest to ``target``, and that count.

    The count grows with the hidden size, so doubling brackets the target and bisection finds
    the smallest size reaching it; that size or the one below is the closest.
    """

    def count(h: int) -> int:
        return parameter_count(model_config, cell, h)

    high = 1
    while count(high) < target:
        high *= 2
    low = high // 2  # count(low) < target, or low = 0
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if count(middle) >= target else (middle, high)
    best = min((h for h in (high - 1, high) if h >= 1), key=lambda h: abs(count(h) - target))
    return best, count(best)
