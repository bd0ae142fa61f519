"""Seq2Seq, its decoders, the toy tasks and the attention plot.

Oracles: the encoder run on each sentence alone (for the bridge and the masking), teacher forcing
on the decoded tokens (for greedy decoding and the beam's scores), exhaustive search over every
target sequence (for beam search), and a real training run on digit reversal.
"""

from __future__ import annotations

import datetime
import itertools
import re
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from lstmlab.data.seq2seq_tasks import BOS, EOS, PAD, DateTask, ReverseTask, exact_match
from lstmlab.models.attention import AdditiveAttention, MultiplicativeAttention
from lstmlab.models.seq2seq import Seq2Seq
from lstmlab.viz.attention import plot_attention

SV, TV, S = 11, 7, 6
LENGTHS = torch.tensor([6, 2, 4])

CONFIGS = {
    "gru>lstm bi additive": dict(
        cell="lstm", encoder_cell="gru", bidirectional=True, attention=AdditiveAttention
    ),
    "lstm>gru general 2 layers": dict(
        cell="gru", encoder_cell="lstm", num_layers=2, attention=MultiplicativeAttention
    ),
    "peephole>rnn dot": dict(
        cell="rnn",
        encoder_cell="peephole",
        hidden_size=5,
        attention=partial(MultiplicativeAttention, general=False),
    ),
    "lstm no attention": dict(cell="lstm", attention=None, num_layers=2),
}


def model(config: str, seed: int = 0, **overrides) -> Seq2Seq:
    torch.manual_seed(seed)
    options = dict(embed_size=4, hidden_size=6) | CONFIGS[config] | overrides
    return Seq2Seq(SV, TV, **options).double().eval()


def source(seed: int = 1, lengths: torch.Tensor = LENGTHS) -> torch.Tensor:
    src = torch.randint(3, SV, (len(lengths), S), generator=torch.Generator().manual_seed(seed))
    return src.masked_fill(torch.arange(S) >= lengths.unsqueeze(1), PAD)


def targets(seed: int = 2, steps: int = 5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(3, TV, (len(LENGTHS), steps), generator=generator)


@pytest.mark.parametrize("config", CONFIGS)
def test_shapes_and_attention_weights(config):
    m = model(config)
    logits, weights = m(source(), LENGTHS, targets())
    assert logits.shape == (3, 5, TV)
    if m.attention is None:
        assert weights is None
        return
    assert weights.shape == (3, 5, S)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 5, dtype=torch.float64))
    padding = torch.arange(S) >= LENGTHS.unsqueeze(1)  # (B, S)
    assert bool((weights[padding.unsqueeze(1).expand_as(weights)] == 0).all())


@pytest.mark.parametrize("config", CONFIGS)
def test_each_sentence_as_if_alone(config):
    """Batching and padding change nothing: each row equals its sentence run alone, unpadded."""
    m = model(config)
    src, tgt = source(), targets()
    logits, weights = m(src, LENGTHS, tgt)
    for b, n in enumerate(LENGTHS.tolist()):
        alone, alone_weights = m(src[b : b + 1, :n], [n], tgt[b : b + 1])
        torch.testing.assert_close(logits[b : b + 1], alone, atol=1e-12, rtol=0)
        if weights is not None:
            torch.testing.assert_close(weights[b : b + 1, :, :n], alone_weights, atol=1e-12, rtol=0)


def test_bridge_is_tanh_of_a_linear_map_of_the_encoders_final_states():
    m = model("gru>lstm bi additive")
    src = source()
    _, (h_0, c_0) = m.encode(src, LENGTHS)  # LSTM decoder
    assert h_0.shape == c_0.shape == (1, 3, 6) and bool((c_0 == 0).all())
    for b, n in enumerate(LENGTHS.tolist()):
        out, _ = m.encoder(m.src_embedding(src[b : b + 1, :n]))  # (1, n, 2H)
        last = torch.cat([out[0, -1, :6], out[0, 0, 6:]])  # forward's last step, backward's first
        want = torch.tanh(m.bridge.weight @ last + m.bridge.bias)
        torch.testing.assert_close(h_0[0, b], want, atol=1e-12, rtol=0)


@pytest.mark.parametrize("cell", ["lstm", "fgr", "gru-v3", "rnn"])
def test_stepping_the_cells_equals_running_the_decoder_layer(cell):
    """Without attention the decoder is the layer over the embedded targets from the bridge."""
    m = model("lstm no attention", cell=cell)
    src, tgt = source(), targets()
    logits, _ = m(src, LENGTHS, tgt)
    _, state = m.encode(src, LENGTHS)
    out, _ = m.decoder(m.tgt_embedding(tgt), state[0] if len(state) == 1 else state)
    torch.testing.assert_close(logits, m.head(out), atol=1e-12, rtol=0)


@pytest.mark.parametrize("config", CONFIGS)
def test_greedy_is_the_argmax_of_teacher_forcing_on_its_own_output(config):
    m = model(config)
    src = source()
    tokens, weights = m.greedy(src, LENGTHS, max_len=8)
    bos = torch.full((3, 1), BOS)
    logits, forced = m(src, LENGTHS, torch.cat([bos, tokens[:, :-1]], 1))
    live = torch.ones_like(tokens, dtype=torch.bool)  # up to and including the first EOS
    live[:, 1:] = (tokens[:, :-1] == EOS).long().cumsum(1) == 0
    assert torch.equal(logits.argmax(-1)[live], tokens[live])
    assert bool((tokens[~live] == PAD).all())
    if weights is not None:
        torch.testing.assert_close(weights[live], forced[live], atol=1e-12, rtol=0)
        assert bool((weights[~live] == 0).all())


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_of_width_one_is_greedy(config, seed):
    m = model(config, seed)
    src = source(seed + 10)
    tokens, weights = m.greedy(src, LENGTHS, max_len=8)
    beam_tokens, beam_weights, scores = m.beam_search(src, LENGTHS, beam_width=1, max_len=8)
    assert torch.equal(beam_tokens, tokens)
    if weights is None:
        assert beam_weights is None
    else:
        torch.testing.assert_close(beam_weights, weights, atol=1e-12, rtol=0)
    torch.testing.assert_close(
        scores, m.sequence_log_prob(src, LENGTHS, tokens), atol=1e-10, rtol=0
    )


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_scores_at_least_greedys_and_reports_true_log_probs(config, seed):
    m = model(config, seed)
    src = source(seed + 10)
    greedy, _ = m.greedy(src, LENGTHS, max_len=8)
    tokens, weights, scores = m.beam_search(src, LENGTHS, beam_width=4, max_len=8)
    torch.testing.assert_close(
        scores, m.sequence_log_prob(src, LENGTHS, tokens), atol=1e-10, rtol=0
    )
    assert bool((scores >= m.sequence_log_prob(src, LENGTHS, greedy) - 1e-10).all())
    if weights is not None:  # the best hypothesis's weights, as teacher forcing gives
        bos = torch.full((3, 1), BOS)
        _, forced = m(src, LENGTHS, torch.cat([bos, tokens[:, :-1]], 1))
        live = torch.ones_like(tokens, dtype=torch.bool)
        live[:, 1:] = (tokens[:, :-1] == EOS).long().cumsum(1) == 0
        torch.testing.assert_close(weights[live], forced[live], atol=1e-12, rtol=0)


def test_a_beam_as_wide_as_all_sequences_is_exact_search():
    """With V^max_len hypotheses nothing is pruned: the beam's best is the best of all sequences."""
    torch.manual_seed(3)
    m = Seq2Seq(SV, 4, "gru", embed_size=4, hidden_size=6, encoder_cell="lstm").double().eval()
    src, max_len = source(), 3
    tokens, _, scores = m.beam_search(src, LENGTHS, beam_width=4**max_len, max_len=max_len)
    every = torch.tensor(list(itertools.product(range(4), repeat=max_len)))  # (64, 3)
    for b, n in enumerate(LENGTHS.tolist()):
        many = src[b : b + 1].expand(len(every), -1)
        log_probs = m.sequence_log_prob(many, [n] * len(every), every)
        assert scores[b].item() == pytest.approx(log_probs.max().item(), abs=1e-10)


def test_training_reaches_high_exact_match_on_digit_reversal():
    torch.manual_seed(0)
    task = ReverseTask(min_length=2, max_length=5, num_digits=5)
    m = Seq2Seq(
        len(task.src_vocab),
        len(task.tgt_vocab),
        "lstm",
        embed_size=16,
        hidden_size=32,
        encoder_cell="gru",
        bidirectional=True,
    )
    optimizer = torch.optim.Adam(m.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    for _ in range(600):
        src, lengths, tgt = task.batch(32, generator)
        logits, _ = m(src, lengths, tgt[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        optimizer.step()
    src, lengths, tgt = task.batch(300, torch.Generator().manual_seed(2))
    greedy = exact_match(m.greedy(src, lengths, max_len=7)[0], tgt)
    beam = exact_match(m.beam_search(src, lengths, beam_width=3, max_len=7)[0], tgt)
    assert greedy >= 0.9 and beam >= 0.9, (greedy, beam)  # chance is below 1 %


def test_tasks_batches_and_exact_match():
    task = DateTask()
    src, lengths, tgt = task.batch(64, torch.Generator().manual_seed(0))
    again = task.batch(64, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip((src, lengths, tgt), again))  # seeded
    assert bool((tgt[:, 0] == BOS).all()) and bool(((tgt == EOS).sum(1) == 1).all())
    for b in range(64):
        text = "".join(task.src_vocab[i] for i in src[b, : lengths[b]])
        assert (
            bool((src[b, lengths[b] :] == PAD).all()) and PAD not in src[b, : lengths[b]].tolist()
        )
        date = task.decode_tgt(tgt[b])
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", date) and date[:4] in text
    # Training and held-out days never meet.
    days = {t for _, t in task.pairs(2000, torch.Generator().manual_seed(1))}
    held = {t for _, t in DateTask(held_out=True).pairs(200, torch.Generator().manual_seed(1))}
    assert all(datetime.date.fromisoformat(t).toordinal() % 10 == 0 for t in held)
    assert not days & held and len(held) > 100
    reverse = ReverseTask(3, 3)
    src, _, tgt = reverse.batch(5, torch.Generator().manual_seed(0))
    assert torch.equal(src.flip(1), tgt[:, 1:-1])  # same digits in both vocabularies
    # exact_match: right up to EOS counts, anything after EOS is ignored, one wrong token fails.
    target = torch.tensor([[BOS, 5, 6, EOS, PAD], [BOS, 5, EOS, PAD, PAD]])
    assert exact_match(torch.tensor([[5, 6, EOS], [5, EOS, 9]]), target) == 1.0
    assert exact_match(torch.tensor([[5, 6, 6], [5, 6, EOS]]), target) == 0.0
    assert exact_match(torch.tensor([[5, 6], [5, EOS]]), target) == 0.5


def test_plot_attention_writes_png_and_svg(tmp_path):
    weights = torch.softmax(torch.randn(4, 6), -1)
    png = plot_attention(weights, list("24 Nov"), [*"202", "</s>"], tmp_path / "a.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 3000
    svg = plot_attention(weights[:2, :3], list("abc"), ["x", "y"], tmp_path / "a.svg", title="t")
    assert svg.read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match="len\\(tgt_tokens\\) <= T"):
        plot_attention(weights, list("24 Nov 2026"), ["x"], tmp_path / "b.png")


@pytest.mark.parametrize(
    "call, error, pieces",
    [
        (
            lambda m: m(source()[0], LENGTHS, targets()),
            ValueError,
            ["tokens must be a non-empty (B, T)"],
        ),
        (lambda m: m(source(), [6, 2], targets()), ValueError, ["one entry per sequence", "(3,)"]),
        (lambda m: m(source(), [6, 0, 4], targets()), ValueError, ["lengths must lie in [1, 6]"]),
        (lambda m: m(source(), [6, 7, 4], targets()), ValueError, ["lengths must lie in [1, 6]"]),
        (
            lambda m: m(source(), LENGTHS, targets()[:2]),
            ValueError,
            ["tgt_in must have one row per source", "(3, T)", "(2, 5)"],
        ),
        (
            lambda m: m(source(), LENGTHS, targets() + TV),
            ValueError,
            ["token ids must lie in [0, 7)"],
        ),
        (lambda m: m(source().double(), LENGTHS, targets()), TypeError, ["torch.long"]),
        (lambda m: m.greedy(source(), LENGTHS, max_len=0), ValueError, ["max_len must be"]),
        (
            lambda m: m.beam_search(source(), LENGTHS, beam_width=0, max_len=3),
            ValueError,
            ["beam_width must be"],
        ),
        (lambda m: Seq2Seq(SV, TV, "lstmm"), ValueError, ["unknown cell 'lstmm'"]),
        (lambda m: Seq2Seq(SV, TV, eos_id=TV), ValueError, ["eos_id must be an id in [0, 7)"]),
        (
            lambda m: Seq2Seq(SV, TV, attention=lambda q, k: None),
            TypeError,
            ["attention must build an nn.Module"],
        ),
    ],
)
def test_bad_input_says_what_is_wrong(call, error, pieces):
    m = model("gru>lstm bi additive")
    with pytest.raises(error) as info:
        call(m)
    for piece in pieces:
        assert piece in str(info.value), f"{piece!r} missing from: {info.value}"
