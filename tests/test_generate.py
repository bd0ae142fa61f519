"""sample(): seeded, streaming, greedy at top_k=1, and careful with the caller's modes."""

from __future__ import annotations

import itertools

import pytest
import torch

from lstmlab.data.vocab import Vocab
from lstmlab.models import LanguageModel
from lstmlab.models.generate import sample

TEXT = "the quick brown fox jumps over the lazy dog.\nthe end.\n"


@pytest.fixture
def vocab() -> Vocab:
    return Vocab.build(TEXT, level="char")


@pytest.fixture
def model(vocab: Vocab) -> LanguageModel:
    torch.manual_seed(0)
    model = LanguageModel(len(vocab), "lstm", embed_size=8, hidden_size=16, num_layers=2)
    for p in model.parameters():  # sharper than the initial near-uniform logits
        p.data.mul_(8)
    return model


def test_same_seed_same_text_other_seed_other_text(model, vocab):
    first = list(sample(model, vocab, "the ", length=60, seed=3))
    assert first == list(sample(model, vocab, "the ", length=60, seed=3))
    assert first != list(sample(model, vocab, "the ", length=60, seed=4))


def test_top_k_1_is_greedy_decoding(model, vocab):
    ids = vocab.encode(vocab.tokenize("the q"))
    model.eval()
    with torch.no_grad():  # the reference re-runs the whole sequence each time
        for _ in range(30):
            logits, _ = model(ids.unsqueeze(0))
            ids = torch.cat([ids, logits[0, -1].argmax().view(1)])
    greedy = vocab.decode(ids[5:])
    model.train()
    assert list(sample(model, vocab, "the q", length=30, top_k=1, seed=0)) == greedy
    assert list(sample(model, vocab, "the q", length=30, top_k=1, seed=1)) == greedy
    assert list(sample(model, vocab, "the q", length=30, temperature=1e-6, seed=2)) == greedy


def test_top_k_limits_the_choices(model, vocab):
    model.eval()
    with torch.no_grad():
        logits, _ = model(vocab.encode(vocab.tokenize("the")).unsqueeze(0))
    allowed = set(vocab.decode(logits[0, -1].topk(3).indices))
    drawn = {next(sample(model, vocab, "the", length=1, top_k=3, seed=s)) for s in range(40)}
    assert drawn <= allowed and len(drawn) > 1


def test_streams_exactly_length_tokens_lazily(model, vocab):
    stream = sample(model, vocab, "fox", length=25, seed=0)
    head = list(itertools.islice(stream, 5))
    assert len(head) == 5 and all(t in vocab.tokens for t in head)
    assert len(head) + len(list(stream)) == 25
    assert list(sample(model, vocab, "fox", length=0)) == []


def test_the_callers_modes_are_kept_between_tokens(model, vocab):
    model.train()
    stream = sample(model, vocab, "the", length=3, seed=0)
    next(stream)
    assert model.training and torch.is_grad_enabled()
    list(stream)
    assert model.training


def test_empty_prompt_starts_after_a_line_end(model, vocab):
    assert list(sample(model, vocab, "", length=20, seed=5)) == list(
        sample(model, vocab, "\n", length=20, seed=5)
    )
    unknown = list(sample(model, vocab, "@", length=10, seed=5))  # "@" reads as <unk>
    assert unknown == list(sample(model, vocab, "<", length=10, seed=5))  # so does "<"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(temperature=0), "temperature"),
        (dict(temperature=-1.0), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
        (dict(top_k=0), "top_k"),
        (dict(length=-1), "length"),
    ],
)
def test_bad_arguments_raise_at_the_call(model, vocab, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample(model, vocab, "the", **kwargs)  # no next(): raised before iterating


def test_vocab_must_fit_the_model(model):
    with pytest.raises(ValueError, match="vocabulary has"):
        sample(model, Vocab.build("ab", level="char"), "a")


def test_word_pieces_concatenate_into_text():
    vocab = Vocab.build(["a", "b", "<eos>"], level="word")  # <unk> a b <eos>
    torch.manual_seed(0)
    model = LanguageModel(len(vocab), "gru", embed_size=4, hidden_size=4, num_layers=1)
    pieces = list(sample(model, vocab, "a b", length=200, seed=0))
    ids = vocab.encode(["a", "b"] + [p.strip() or "<eos>" for p in pieces])
    words = vocab.decode(ids)  # the drawn tokens
    for piece, before, word in zip(pieces, words[1:], words[2:]):
        expected = "\n" if word == "<eos>" else word if before == "<eos>" else " " + word
        assert piece == expected
    assert {"\n", " a"} <= set(pieces) and any(p in ("a", "b") for p in pieces)  # every case
    text = "".join(pieces)
    assert vocab.tokenize("a b" + text) == words
