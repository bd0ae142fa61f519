r"""Where the forget gate sits: its values over a text, as a histogram.

The LSTM's cell state is a conveyor belt, ``c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t`` (Olah 2015; Gers
et al. 2000): a unit whose forget gate stays near 1 carries its memory across many steps, one
near 0 rewrites it at every step. :func:`gate_values` reads a language model's gate over a text
(the layer's own ``return_gates=True``) and :func:`plot_forget_gate_distribution` draws the
distribution of those values, one line per model or layer -- e.g. at initialisation (forget
bias 1: f ≈ σ(1) ≈ 0.73) against after training.

Example::

    >>> model, vocab, _ = load_trained("runs/char-lstm/checkpoint")
    >>> f = gate_values(model, vocab, open("notes.py").read())            # (L, T, H)
    >>> plot_forget_gate_distribution({"layer 1": f[0]}, "forget.png")
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from lstmlab.models import LanguageModel
from lstmlab.viz.plots import _finish, _pyplot


def gate_values(
    model: LanguageModel, vocab, text: str, *, gate: str = "forget", max_tokens: int = 5000
) -> Tensor:
    """One gate's activations at every token of ``text``, every layer: (L, T, H).

    The first ``max_tokens`` tokens of the text are read from a zero state in evaluation mode (no
    dropout), through the layer's gate-keeping readable loop (``return_gates=True``). ``gate``
    is a name the cell's ``step`` returns: ``"forget"`` for the LSTM cells, ``"update"`` for the
    GRU (whose ``h = (1 - z) n + z h_{t-1}`` makes z its forget gate), ``"input"``, ...
    """
    if not isinstance(model, LanguageModel):
        raise ValueError(
            f"gate_values reads text with a language model (a checkpoint of "
            f"`lstmlab train --task text`); got {type(model).__name__}"
        )
    if not isinstance(text, str) or not text:
        raise ValueError("text must be a non-empty string")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    tokens = vocab.tokenize(text)[:max_tokens]
    if not tokens:
        raise ValueError("text has no tokens (only whitespace, for a word-level model)")
    ids = vocab.encode(tokens).to(model.embedding.weight.device)  # (T,)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _, _, gates = model.rnn(model.embedding(ids)[None], return_gates=True)  # (1, T, E) in
    finally:
        model.train(was_training)
    if gate not in gates[0]:
        raise ValueError(
            f"the {model.cell_name!r} cell has no {gate!r} gate; its gates are "
            f"{', '.join(map(repr, gates[0])) or 'none'}"
        )
    return torch.stack([layer[gate][0] for layer in gates]).float().cpu()  # (L, T, H)


def plot_forget_gate_distribution(
    values_by_label: Mapping[str, Tensor], out: str | Path, bins: int = 50, title: str | None = None
) -> Path:
    """Histograms of gate values in [0, 1], one outline per label (PNG or SVG by the suffix).

    ``values_by_label`` maps a label to a tensor of any shape (e.g. (T, H) from
    :func:`gate_values`); every value counts once. The y axis is the fraction of values per bin,
    on a log scale, so labels with different numbers of values and shapes compare; each label
    shows its mean and the share of values above 0.9 (units that carry their memory on).
    """
    if not values_by_label:
        raise ValueError("values_by_label must map at least one label to a tensor of gate values")
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, values in values_by_label.items():
        if not isinstance(values, Tensor) or values.numel() == 0:
            raise ValueError(
                f"values_by_label[{label!r}] must be a non-empty tensor of gate "
                f"values, got {type(values).__name__}"
            )
        v = values.detach().double().flatten().cpu()
        if bool(((v < 0) | (v > 1) | v.isnan()).any()):
            raise ValueError(
                f"values_by_label[{label!r}] must hold gate values in [0, 1] "
                f"(sigmoid outputs); got min {float(v.min()):.3g}, "
                f"max {float(v.max()):.3g}"
            )
        ax.hist(
            v.numpy(),
            bins=bins,
            range=(0, 1),
            weights=torch.full_like(v, 1 / len(v)).numpy(),
            histtype="step",
            linewidth=1.5,
            label=f"{label} (mean {float(v.mean()):.2f}, "
            f"{100 * float((v > 0.9).double().mean()):.0f} % > 0.9)",
        )
    ax.set_xlim(0, 1)
    ax.set_yscale("log")  # a peaked distribution (at initialisation) and a spread one, both
    ax.set_xlabel("forget gate value f_t (1: keep the cell state, 0: erase it)")
    ax.set_ylabel("fraction of values")
    if title:
        ax.set_title(title)
    return _finish(plt, fig, ax, out)
