"""The synthetic tasks (`lstmlab.data.tasks`): each batch checked against the task's definition.

The oracle is the definition itself, re-read from the batch: the adding target recomputed from
the marked values with a plain loop, the recall sentence decoded back into words and parsed.
"""

from __future__ import annotations

import math

import pytest
import torch

from lstmlab.data import TASKS, AddingTask, RecallTask, Task, make_task
from lstmlab.data.tasks import FACTS, FILLERS, LANGUAGES, QUERY


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- adding --------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [2, 3, 10, 101])
def test_adding_batch_matches_its_definition(length):
    task = AddingTask(length=length)
    x, y = task.batch(64, gen(length))
    assert x.shape == (64, length, 2) and y.shape == (64, 1)
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) <= {0.0, 1.0}
    half = length // 2
    for b in range(64):
        marked = markers[b].nonzero().flatten().tolist()
        assert len(marked) == 2
        assert marked[0] < half <= marked[1]  # one in each half
        assert y[b, 0].item() == pytest.approx(
            values[b, marked[0]].item() + values[b, marked[1]].item(), abs=1e-6
        )


def test_adding_markers_cover_both_halves():
    # every position of each half is used, not only its ends
    x, _ = AddingTask(length=10).batch(2000, gen())
    assert (x[..., 1].sum(0) > 0).all()


def test_adding_baseline_is_the_mse_of_predicting_the_mean():
    task = AddingTask(length=20)
    _, y = task.batch(40_000, gen(1))
    empirical = task.loss(torch.ones_like(y), y).item()
    assert empirical == pytest.approx(task.baseline, abs=0.01)
    assert task.baseline == pytest.approx(1 / 6)
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    assert task.metrics(torch.ones_like(y), y) == {"mse": pytest.approx(empirical)}
    assert task.loss(y.clone(), y).item() == 0.0


def test_adding_loss_rejects_a_prediction_per_step():
    task = AddingTask(length=5)
    x, y = task.batch(4, gen())
    with pytest.raises(ValueError, match=r"prediction must have shape \(4, 1\).*got \(4, 5, 1\)"):
        task.loss(torch.zeros(4, 5, 1), y)


# ---- recall --------------------------------------------------------------------------------


def decode(task: RecallTask, row: torch.Tensor) -> list[str]:
    return [task.vocab[i] for i in row.tolist()]


@pytest.mark.parametrize("gap", [0, 1, 7, 20, 53])
def test_recall_sentences_parse_and_the_target_is_the_countrys_language(gap):
    task = RecallTask(gap=gap)
    x, y = task.batch(200, gen(gap))
    assert x.dtype == torch.long and x.shape == (200, 6 + gap + 3) == (200, task.length)
    assert y.shape == (200,) and y.dtype == torch.long
    countries, languages = set(LANGUAGES), set(LANGUAGES.values())
    templates = {f.replace("{}", "X") for f in FACTS}
    filler_words = {w for s in FILLERS for w in s.split()}
    for b in range(200):
        words = decode(task, x[b])
        fact, filler, query = words[:6], words[6 : 6 + gap], words[6 + gap :]
        country = fact[4]
        assert " ".join(fact[:4] + ["X"] + fact[5:]) in templates
        assert task.languages[y[b]] == LANGUAGES[country]
        assert query == QUERY.split()
        assert set(filler) <= filler_words
        assert not set(filler) & (countries | languages)
        assert "<pad>" not in words


def test_recall_filler_is_whole_sentences_cut_at_a_word():
    task = RecallTask(gap=40)
    x, _ = task.batch(50, gen())
    sentences = {tuple(s.split()) for s in FILLERS}
    for b in range(50):
        filler = decode(task, x[b])[6:46]
        # split after each "."; every complete sentence is from the grammar, the tail a prefix
        *whole, tail = " ".join(filler).replace(" . ", " .|").split("|")
        for s in whole:
            assert tuple(s.split()) in sentences
        assert any(s[: len(tail.split())] == tuple(tail.split()) for s in sentences)


def test_recall_classes_and_chance():
    task = RecallTask(gap=3, num_languages=5)
    assert task.output_size == 5 == len(task.languages)
    assert task.baseline == pytest.approx(math.log(5))
    assert task.vocab[0] == "<pad>" and len(set(task.vocab)) == len(task.vocab)
    assert task.vocab_size == task.input_size == len(task.vocab)
    x, y = task.batch(3000, gen())
    counts = torch.bincount(y, minlength=5)
    assert counts.min() > 500  # every class drawn, roughly uniformly
    uniform = torch.zeros(3000, 5)
    assert task.loss(uniform, y).item() == pytest.approx(task.baseline)
    perfect = torch.nn.functional.one_hot(y, 5).float() * 20
    assert task.metrics(perfect, y) == {"accuracy": 1.0}
    assert task.metrics(uniform - perfect, y)["accuracy"] == 0.0
    assert len(LANGUAGES) >= 8 and len(set(LANGUAGES.values())) == len(LANGUAGES)


# ---- shared --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TASKS))
def test_same_seed_same_batch_other_seed_other_batch(name):
    task = make_task(name)
    x1, y1 = task.batch(16, gen(7))
    x2, y2 = task.batch(16, gen(7))
    x3, _ = task.batch(16, gen(8))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_tasks_follow_the_protocol(name):
    task = make_task(name)
    assert isinstance(task, Task) and task.name == name
    x, y = task.batch(2, gen())
    if task.vocab_size is None:
        assert x.is_floating_point() and x.shape[-1] == task.input_size
    else:
        assert x.dtype == torch.long and x.dim() == 2 and int(x.max()) < task.vocab_size
    assert math.isfinite(task.baseline) and task.baseline > 0


def test_make_task_passes_arguments_and_names_the_choices():
    assert make_task("adding", length=7).length == 7
    assert make_task("recall", gap=4).length == 13
    with pytest.raises(
        ValueError, match=r"unknown task 'typo'; choose one of: adding, recall, copy"
    ):
        make_task("typo")


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: AddingTask(length=1), r"length must be an integer >= 2, got 1"),
        (lambda: RecallTask(gap=-1), r"gap must be an integer >= 0, got -1"),
        (lambda: RecallTask(num_languages=1), r"num_languages must be an integer >= 2, got 1"),
        (lambda: RecallTask(num_languages=99), r"num_languages must be at most 12, got 99"),
        (lambda: AddingTask().batch(0, gen()), r"batch_size must be an integer >= 1, got 0"),
        (lambda: RecallTask().batch(-3, gen()), r"batch_size must be an integer >= 1, got -3"),
    ],
)
def test_bad_arguments_name_the_argument_the_expectation_and_the_value(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_a_size_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match=r"length must be an integer >= 2, got 2.5"):
        AddingTask(length=2.5)
