"""Forget-gate values over a text: against the LSTM equations, and their histogram."""

from __future__ import annotations

import pytest
import torch

from lstmlab.data import Vocab
from lstmlab.models import LanguageModel
from lstmlab.models.build import init_forget_bias
from lstmlab.viz.explore import activations
from lstmlab.viz.gates import gate_values, plot_forget_gate_distribution

TEXT = "def f(x):\n    return x + 1\n"


def model_and_vocab(cell: str = "lstm", layers: int = 2) -> tuple[LanguageModel, Vocab]:
    torch.manual_seed(0)
    vocab = Vocab.build(TEXT, level="char")
    model = LanguageModel(
        len(vocab), cell, embed_size=6, hidden_size=5, num_layers=layers, dropout=0.5
    )  # read without it: in evaluation mode
    init_forget_bias(model, 1.0)
    return model, vocab


@torch.no_grad()
def test_forget_values_follow_the_equations():
    """f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf) (Gers et al. 2000), written out in float64
    for the first layer with the LSTM's own h, c recursion."""
    model, vocab = model_and_vocab()
    f = gate_values(model, vocab, TEXT)
    assert f.shape == (2, len(TEXT), 5)
    x = model.embedding.weight.double()[vocab.encode(vocab.tokenize(TEXT))]  # (T, E)
    w_ih, w_hh = model.rnn.weight_ih_l0.double(), model.rnn.weight_hh_l0.double()
    b = model.rnn.bias_ih_l0.double() + model.rnn.bias_hh_l0.double()
    h, c = torch.zeros(5, dtype=torch.double), torch.zeros(5, dtype=torch.double)
    want = []
    for x_t in x:
        i, f_t, g, o = (w_ih @ x_t + w_hh @ h + b).chunk(4)
        i, f_t, g, o = i.sigmoid(), f_t.sigmoid(), g.tanh(), o.sigmoid()
        c = f_t * c + i * g
        h = o * c.tanh()
        want.append(f_t)
    torch.testing.assert_close(f[0].double(), torch.stack(want), rtol=1e-5, atol=1e-6)
    # The second layer: as the explorer reads it, one layer at a time through its own loop.
    torch.testing.assert_close(
        f[1], activations(model, vocab, TEXT)["layers"][1]["forget"], rtol=1e-5, atol=1e-6
    )
    assert model.training  # left as it was found
    torch.testing.assert_close(gate_values(model, vocab, TEXT, max_tokens=7), f[:, :7])


def test_gru_has_an_update_gate_not_a_forget_gate():
    model, vocab = model_and_vocab("gru", layers=1)
    assert gate_values(model, vocab, TEXT, gate="update").shape == (1, len(TEXT), 5)
    with pytest.raises(ValueError, match="no 'forget' gate; its gates are .*'update'"):
        gate_values(model, vocab, TEXT)


def test_histogram_writes_png_and_svg(tmp_path):
    values = {"init": torch.rand(100, 8) * 0.5 + 0.25, "trained": torch.rand(30, 8)}
    png = plot_forget_gate_distribution(values, tmp_path / "forget.png")
    svg = plot_forget_gate_distribution(values, tmp_path / "forget.svg", bins=10, title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "init" in text and "trained" in text


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: gate_values(torch.nn.LSTM(3, 4), None, TEXT), "language model"),
        (lambda: gate_values(*model_and_vocab(), ""), "non-empty string"),
        (lambda: gate_values(*model_and_vocab(), TEXT, max_tokens=0), "max_tokens"),
        (lambda: plot_forget_gate_distribution({}, "x.png"), "at least one label"),
        (
            lambda: plot_forget_gate_distribution({"a": torch.tensor([0.5, 1.5])}, "x.png"),
            r"in \[0, 1\].*max 1.5",
        ),
        (lambda: plot_forget_gate_distribution({"a": torch.tensor([])}, "x.png"), "non-empty"),
        (lambda: plot_forget_gate_distribution({"a": torch.rand(3)}, "x.png", bins=0), "bins"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
