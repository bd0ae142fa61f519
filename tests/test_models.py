"""LanguageModel and SequenceModel: shapes, weight tying, document resets, stepping, configs.

The references here are independent runs of the same model: a document reset must equal running
the documents apart from fresh zeros, one ``step`` at a time must equal ``forward`` over the whole
sequence, and a bidirectional summary must equal the layer's own final states ``h_n``.
"""

from __future__ import annotations

import json

import pytest
import torch

from lstmlab.data.tasks import AddingTask, RecallTask
from lstmlab.models import LanguageModel, SequenceModel, detach_state
from lstmlab.models.build import build_model

V, B, T = 23, 3, 12
TOL = dict(atol=1e-10, rtol=0)


def language_model(cell: str = "lstm", **kwargs) -> LanguageModel:
    torch.manual_seed(0)
    options = dict(embed_size=6, hidden_size=7, num_layers=2) | kwargs
    return LanguageModel(V, cell, **options).double().eval()


def tokens(batch: int = B, steps: int = T, seed: int = 1) -> torch.Tensor:
    return torch.randint(V, (batch, steps), generator=torch.Generator().manual_seed(seed))


def parts(state) -> tuple[torch.Tensor, ...]:
    return (state,) if isinstance(state, torch.Tensor) else tuple(state)


def random_state(model: LanguageModel, batch: int):
    state = model.init_state(batch)
    return (
        type(state)(torch.randn_like(p) for p in state)
        if isinstance(state, tuple)
        else torch.randn_like(state)
    )


# ---- LanguageModel --------------------------------------------------------------------------


def test_logits_and_state_shapes():
    model = language_model("lstm", proj_size=4)
    logits, (h, c) = model(tokens())
    assert logits.shape == (B, T, V)
    assert h.shape == (2, B, 4) and c.shape == (2, B, 7)  # projected h, full c
    assert [p.shape for p in model.init_state(5)] == [(2, 5, 4), (2, 5, 7)]
    assert language_model("gru").init_state(5).shape == (2, 5, 7)  # one part: a bare tensor


def test_tied_weights_share_one_tensor():
    model = language_model(hidden_size=6, tie_weights=True)
    assert model.head.weight is model.embedding.weight
    names = [n for n, _ in model.named_parameters()]
    assert "head.weight" not in names  # counted once
    projected = language_model(hidden_size=9, proj_size=6, tie_weights=True)  # LSTMP: 9 -> 6
    assert projected.head.weight is projected.embedding.weight


def test_tying_mismatched_sizes_names_both():
    with pytest.raises(ValueError, match=r"embed_size=6.*output size 7"):
        language_model(tie_weights=True)


def test_bidirectional_language_model_is_refused():
    with pytest.raises(ValueError, match="left to right"):
        language_model(bidirectional=True)


def test_unknown_cell_lists_the_names():
    with pytest.raises(ValueError, match="unknown cell 'lsmt'.*peephole"):
        LanguageModel(V, "lsmt")


@pytest.mark.parametrize("cell", ["lstm", "gru", "fgr"])
def test_document_starts_reset_the_state(cell):
    model = language_model(cell)
    x, initial = tokens(), random_state(model, B)
    starts = torch.zeros(B, T, dtype=torch.bool)
    starts[0, 4] = True  # row 0: carried doc until 4, then a new one
    starts[1, 0] = starts[1, 7] = True  # row 1: new docs at 0 and 7 (initial state dropped)
    starts[2, 4] = starts[2, 9] = True  # row 2: three pieces
    logits, final = model(x, initial, starts)

    for b in range(B):
        cuts = [0, *starts[b].nonzero().flatten().tolist(), T]
        state = tuple(p[:, b : b + 1] for p in parts(initial))  # this row's carried state
        for begin, end in zip(cuts, cuts[1:]):
            if begin == end:
                continue
            if starts[b, begin]:
                state = None  # a fresh document
            expected, state = model(
                x[b : b + 1, begin:end], None if state is None else _form(state)
            )
            state = parts(state)
            torch.testing.assert_close(logits[b : b + 1, begin:end], expected, **TOL)
        for got, want in zip(parts(final), state):
            torch.testing.assert_close(got[:, b : b + 1], want, **TOL)


def _form(state: tuple[torch.Tensor, ...]):
    return state[0] if len(state) == 1 else state


def test_starts_without_state_and_without_any_start_match_plain_forward():
    model = language_model("gru")
    x = tokens()
    plain, _ = model(x)
    none = torch.zeros(B, T, dtype=torch.bool)
    torch.testing.assert_close(model(x, None, none)[0], plain, **TOL)
    first = none.clone()
    first[:, 0] = True  # everyone starts at 0: zeros anyway
    torch.testing.assert_close(model(x, random_state(model, B), first)[0], plain, **TOL)


def test_starts_must_match_tokens():
    model = language_model()
    with pytest.raises(ValueError, match="shape of tokens"):
        model(tokens(), None, torch.zeros(B, T + 1, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        model(tokens(), None, torch.zeros(B, T))


@pytest.mark.parametrize("cell", ["lstm", "peephole", "gru", "rnn", "fgr"])
def test_step_equals_forward(cell):
    model = language_model(cell)
    x, initial = tokens(), random_state(model, B)
    expected, expected_final = model(x, initial)
    state, logits = initial, []
    for t in range(T):
        out, state = model.step(x[:, t], state)
        logits.append(out)
    torch.testing.assert_close(torch.stack(logits, dim=1), expected, **TOL)
    for got, want in zip(parts(state), parts(expected_final)):
        torch.testing.assert_close(got, want, **TOL)


def test_step_from_none_is_step_from_zeros():
    model = language_model("fgr")
    token = tokens()[:, 0]
    torch.testing.assert_close(model.step(token)[0], model.step(token, model.init_state(B))[0])


def test_bad_tokens_are_named():
    model = language_model()
    with pytest.raises(TypeError, match="torch.long"):
        model(tokens().double())
    with pytest.raises(ValueError, match=r"\[0, 23\)"):
        model(tokens() + V)
    with pytest.raises(ValueError, match=r"\(B,\)"):
        model.step(tokens())


def test_detach_state_keeps_the_form():
    model = LanguageModel(V, "lstm", embed_size=4, hidden_size=5)
    _, state = model(tokens())
    detached = detach_state(state)
    assert isinstance(detached, tuple) and len(detached) == 2
    assert all(p.grad_fn is not None for p in state)
    assert not any(p.requires_grad for p in detached)
    gru_state = LanguageModel(V, "gru", embed_size=4, hidden_size=5)(tokens())[1]
    assert isinstance(model.detach_state(gru_state), torch.Tensor)


def test_dropout_acts_only_while_training():
    model = language_model(dropout=0.5)
    x = tokens()
    torch.testing.assert_close(model(x)[0], model(x)[0])  # eval: deterministic
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])


# ---- SequenceModel --------------------------------------------------------------------------


def test_sequence_model_on_the_adding_task():
    task = AddingTask(length=10)
    x, y = task.batch(4, torch.Generator().manual_seed(0))
    model = SequenceModel("lstm", task.input_size, task.output_size, hidden_size=8)
    prediction = model(x)
    assert prediction.shape == (4, 1)
    task.loss(prediction, y).backward()  # the task accepts it


def test_sequence_model_on_the_recall_task():
    task = RecallTask(gap=3, num_languages=5)
    x, y = task.batch(4, torch.Generator().manual_seed(0))
    model = SequenceModel(
        "gru",
        task.input_size,
        task.output_size,
        hidden_size=8,
        vocab_size=task.vocab_size,
        embed_size=6,
    )
    prediction = model(x)
    assert prediction.shape == (4, 5)
    assert set(task.metrics(prediction, y)) == {"accuracy"}


def test_bidirectional_summary_is_both_final_states():
    torch.manual_seed(0)
    model = SequenceModel("lstm", 3, 2, hidden_size=5, num_layers=2, bidirectional=True).double()
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    _, (h_n, _) = model.rnn(x)  # (L * 2, B, H): last layer's two rows
    summary = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # forward after T, backward after step 0
    torch.testing.assert_close(model(x), model.head(summary), **TOL)


def test_sequence_model_needs_an_input_kind():
    with pytest.raises(ValueError, match="input_size.*vocab_size"):
        SequenceModel("lstm", None, 1)
    with pytest.raises(ValueError, match="vocab_size=10"):
        SequenceModel("lstm", 4, 1, vocab_size=10)


# ---- configs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, inputs",
    [
        (
            lambda: LanguageModel(
                V,
                "peephole",
                embed_size=5,
                hidden_size=8,
                proj_size=5,
                tie_weights=True,
                dropout=0.1,
            ),
            tokens(),
        ),
        (
            lambda: SequenceModel(
                "rnn",
                3,
                2,
                hidden_size=6,
                num_layers=2,
                bidirectional=True,
                nonlinearity="relu",
                dropout=0.2,
            ),
            torch.randn(B, T, 3),
        ),
        (lambda: SequenceModel("gru-v3", None, 4, vocab_size=V, embed_size=5), tokens()),
    ],
)
def test_build_model_round_trip(make, inputs):
    torch.manual_seed(0)
    model = make().eval()
    config = json.loads(json.dumps(model.config()))  # through plain JSON
    torch.manual_seed(1)  # other initial weights
    rebuilt = build_model(config).eval()
    assert rebuilt.config() == config and type(rebuilt) is type(model)
    rebuilt.load_state_dict(model.state_dict())
    expected, got = model(inputs), rebuilt(inputs)
    expected, got = (expected[0], got[0]) if isinstance(expected, tuple) else (expected, got)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)


def test_build_model_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="'language', 'sequence'"):
        build_model({"kind": "transformer"})


def test_cell_options_must_be_json():
    with pytest.raises(ValueError, match="JSON"):
        LanguageModel(V, embed_size=4, hidden_size=4, dtype=torch.float64)
    with pytest.raises(ValueError, match="batch_first"):
        SequenceModel("lstm", 3, 1, batch_first=False)


def test_init_forget_bias_sets_only_forget_rows():
    from lstmlab.models.build import init_forget_bias

    model = LanguageModel(11, "peephole", embed_size=4, hidden_size=5, num_layers=2)
    assert init_forget_bias(model, 1.0) == 2
    for k in range(2):
        b_ih, b_hh = getattr(model.rnn, f"bias_ih_l{k}"), getattr(model.rnn, f"bias_hh_l{k}")
        torch.testing.assert_close((b_ih + b_hh)[5:10], torch.ones(5))
        assert not torch.allclose((b_ih + b_hh)[:5], torch.ones(5))
    assert init_forget_bias(LanguageModel(11, "gru", embed_size=4, hidden_size=5), 1.0) == 0
    assert init_forget_bias(LanguageModel(11, "coupled", embed_size=4, hidden_size=5), 1.0) == 0
