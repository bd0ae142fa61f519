"""Synthetic sequence tasks, drawn on the fly: the long-range problems LSTMs were made for.

Every task follows :class:`Task`. Conventions shared by all of them:

- **Inputs**, batch-first. A float task gives ``(B, T, input_size)`` in the default float dtype
  and has ``vocab_size = None``. A token task gives int64 ids ``(B, T)`` in ``[0, vocab_size)``
  -- embed them (``nn.Embedding(task.vocab_size, E)``) -- and sets ``input_size = vocab_size``,
  the width of one step one-hot encoded. So ``input_size`` is always the width of a step as a
  vector, and ``vocab_size is not None`` says the batch holds ids.
- **Prediction**: one vector per sequence, ``(B, output_size)``: the model's output at the last
  step (``output[:, -1]`` of a batch-first layer) through a linear head. A task with
  ``every_step = True`` (``copy``) wants one vector per step instead, ``(B, T, output_size)``,
  and targets ``(B, T)``.
- **Determinism**: ``batch`` draws only from the (CPU) generator it is given, so the same seed
  gives the same batch.
- **baseline**: the expected loss of the best predictor that ignores the input; a model below it
  has learned to use the sequence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_positive_int


@runtime_checkable
class Task(Protocol):
    """What a trainer needs from a task (see the module docstring for the conventions).

    Attributes:
        name: the key in :data:`TASKS`.
        input_size: features per step (for a token task, ``vocab_size``).
        vocab_size: number of token ids for a token task; ``None`` for float inputs.
        output_size: features of the prediction ``(B, output_size)``.
        baseline: the loss of the trivial, input-blind predictor.
        every_step: predictions are ``(B, T, output_size)``, one per step, not ``(B, output_size)``.
    """

    name: str
    input_size: int
    vocab_size: int | None
    output_size: int
    baseline: float
    every_step: bool

    def batch(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """A fresh batch ``(inputs, targets)``, batch-first, drawn from ``generator`` alone."""
        ...

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        """The training loss (a scalar) of ``prediction`` ``(B, output_size)``."""
        ...

    def metrics(self, prediction: Tensor, target: Tensor) -> dict[str, float]:
        """Human-facing scores of ``prediction``, e.g. ``{"accuracy": 0.93}``."""
        ...


def _check_prediction(prediction: Tensor, target: Tensor, size: int) -> None:
    expected = (target.shape[0], size)
    if tuple(prediction.shape) != expected:
        raise ValueError(f"prediction must have shape {expected} (one vector per sequence, from "
                         f"the last step); got {tuple(prediction.shape)}")


class AddingTask:
    """The adding problem (Hochreiter & Schmidhuber 1997, exp. 4, in the form of Le et al. 2015).

    Each step carries a value ``u_t ~ U(0, 1)`` and a marker ``m_t``, 1 at exactly two steps --
    one in the first half ``[0, T // 2)``, one in the second half ``[T // 2, T)`` -- and 0
    elsewhere. The target is ``sum_t m_t u_t``: the first marked value must be held across up to
    ``T - 1`` steps of distractors.

    Inputs ``(B, T, 2)`` (channel 0 the values, channel 1 the markers); targets ``(B, 1)``;
    prediction ``(B, 1)``. Loss: mean squared error; metric ``"mse"``. Baseline: always
    predicting the mean 1 scores ``Var(u + u') = 2/12 = 1/6 ≈ 0.167``.

    Example::

        >>> task = AddingTask(length=50)
        >>> x, y = task.batch(32, torch.Generator().manual_seed(0))   # (32, 50, 2), (32, 1)
        >>> loss = task.loss(torch.ones(32, 1), y)      # predicting the mean: ≈ task.baseline
    """

    name = "adding"
    input_size = 2
    vocab_size = None
    output_size = 1
    baseline = 1 / 6
    every_step = False

    def __init__(self, length: int = 100) -> None:
        self.length = check_positive_int("length", length, minimum=2)   # both halves non-empty

    def batch(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        check_positive_int("batch_size", batch_size)
        B, T, half = batch_size, self.length, self.length // 2
        values = torch.rand(B, T, generator=generator)                          # (B, T)
        first = torch.randint(0, half, (B, 1), generator=generator)             # (B, 1)
        second = torch.randint(half, T, (B, 1), generator=generator)            # (B, 1)
        markers = torch.zeros_like(values).scatter_(1, first, 1.0).scatter_(1, second, 1.0)
        target = (values * markers).sum(1, keepdim=True)                        # (B, 1)
        return torch.stack([values, markers], dim=-1), target                   # (B, T, 2)

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        _check_prediction(prediction, target, self.output_size)
        return F.mse_loss(prediction, target)

    def metrics(self, prediction: Tensor, target: Tensor) -> dict[str, float]:
        return {"mse": self.loss(prediction, target).item()}

    def __repr__(self) -> str:
        return f"AddingTask(length={self.length})"


# The post's example, "I grew up in France ... I speak fluent French": one language per country,
# so the answer is a class. Every word is a single token.
LANGUAGES = {"france": "french", "germany": "german", "spain": "spanish", "italy": "italian",
             "japan": "japanese", "china": "chinese", "russia": "russian",
             "brazil": "portuguese", "greece": "greek", "sweden": "swedish",
             "poland": "polish", "egypt": "arabic"}
FACTS = ("i grew up in {} .", "i was born in {} .", "my family lived in {} .",
         "we once lived in {} .")                          # six words each: aligned batches
QUERY = "i speak fluent"
# The filler grammar: plausible sentences that name no country and no language.
_SUBJECTS = ("we", "my sister", "the children", "our neighbours", "my father", "a friend")
_PREDICATES = ("walked to the market", "played in the park", "read a book", "cooked dinner",
               "watched the rain", "went to school", "fed the cat", "painted the fence",
               "sang a song", "visited the museum")
_THINGS = ("the weather", "the summer", "the river", "the house", "the road")
_STATES = ("was mild", "was long", "was quiet", "was cold", "was lovely")
FILLERS = tuple(f"{s} {p} ." for s in _SUBJECTS for p in _PREDICATES) + \
    tuple(f"{t} {s} ." for t in _THINGS for s in _STATES)


class RecallTask:
    """Remember a fact across filler: "i grew up in france . <gap words> i speak fluent" -> french.

    A sequence is a fact sentence (one of :data:`FACTS`, six words) naming a country, then
    exactly ``gap`` filler words, then the query ``"i speak fluent"`` (three words); the target
    is the country's language. The filler is whole sentences drawn uniformly from a small grammar
    (:data:`FILLERS`, no country or language in it), the last one cut at a word boundary so the
    filler has exactly ``gap`` words; every sequence has ``length = 6 + gap + 3`` steps.

    Inputs: token ids ``(B, length)`` over ``vocab`` (a list of words; index 0 is ``"<pad>"``,
    reserved, never produced here); targets ``(B,)``: the language's index in ``languages``;
    prediction ``(B, output_size)`` logits, ``output_size = len(languages)``. Loss: cross-entropy;
    metric ``"accuracy"`` (chance ``1 / len(languages)``); baseline ``log(len(languages))``.

    Args:
        gap: filler words between the fact and the query (>= 0).
        num_languages: use the first ``num_languages`` pairs of :data:`LANGUAGES` (2 to 12).

    Example::

        >>> task = RecallTask(gap=5)
        >>> x, y = task.batch(1, torch.Generator().manual_seed(0))
        >>> " ".join(task.vocab[i] for i in x[0]), task.languages[y[0]]
        ('we once lived in greece . the weather was cold . i speak fluent', 'greek')
    """

    name = "recall"
    every_step = False

    def __init__(self, gap: int = 20, num_languages: int = len(LANGUAGES)) -> None:
        self.gap = check_positive_int("gap", gap, minimum=0)
        check_positive_int("num_languages", num_languages, minimum=2)
        if num_languages > len(LANGUAGES):
            raise ValueError(f"num_languages must be at most {len(LANGUAGES)}, got {num_languages}")
        self.countries = list(LANGUAGES)[:num_languages]
        self.languages = [LANGUAGES[c] for c in self.countries]
        # Every word of the task, answers included (so a language model can say them too).
        words = {w for s in (*FACTS, QUERY, *FILLERS) for w in s.split()} - {"{}"}
        words |= {*LANGUAGES, *LANGUAGES.values()}
        self.vocab = ["<pad>", *sorted(words)]
        ids = {w: i for i, w in enumerate(self.vocab)}

        def encode(sentence: str) -> list[int]:
            return [ids[w] for w in sentence.split()]

        self._facts = [[encode(f.format(c)) for c in self.countries] for f in FACTS]
        self._fillers = [encode(s) for s in FILLERS]
        self._query = encode(QUERY)
        self.length = 6 + self.gap + 3
        self.vocab_size = self.input_size = len(self.vocab)
        self.output_size = num_languages
        self.baseline = math.log(num_languages)

    def batch(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        check_positive_int("batch_size", batch_size)
        B = batch_size
        country = torch.randint(0, self.output_size, (B,), generator=generator)   # (B,) targets
        fact = torch.randint(0, len(FACTS), (B,), generator=generator)           # (B,)
        # ceil(gap / shortest sentence) sentences always cover the gap
        per_row = -(-self.gap // min(map(len, self._fillers)))
        picks = torch.randint(0, len(FILLERS), (B, per_row), generator=generator)
        rows = []
        for c, f, sentences in zip(country.tolist(), fact.tolist(), picks.tolist()):
            filler = [w for s in sentences for w in self._fillers[s]][:self.gap]
            rows.append(self._facts[f][c] + filler + self._query)
        return torch.tensor(rows, dtype=torch.long), country                    # (B, T), (B,)

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        _check_prediction(prediction, target, self.output_size)
        return F.cross_entropy(prediction, target)

    def metrics(self, prediction: Tensor, target: Tensor) -> dict[str, float]:
        _check_prediction(prediction, target, self.output_size)
        return {"accuracy": (prediction.argmax(-1) == target).float().mean().item()}

    def __repr__(self) -> str:
        return f"RecallTask(gap={self.gap}, num_languages={self.output_size})"


class CopyTask:
    """The copying memory problem (Arjovsky, Shah & Bengio 2016, sec. 4.1), exactly as the paper sets it.

    Ten categories ``a_0 ... a_9``, here the ids 0-9: ``a_0 ... a_7`` are symbols, ``a_8`` the
    blank (:attr:`BLANK`), ``a_9`` the delimiter (:attr:`DELIMITER`). An input has ``T + 20``
    steps: 10 symbols drawn uniformly, independently, with replacement from ``a_0 ... a_7``; then
    ``T - 1`` blanks; one delimiter; 10 blanks. The target has ``T + 10`` blanks, then the 10
    symbols in their order: the symbols must be held for ``T`` steps.

    Inputs: token ids ``(B, T + 20)`` (``vocab_size = input_size = 10``); targets ``(B, T + 20)``;
    prediction ``(B, T + 20, 10)`` logits, one per step (``every_step``). Loss: the cross-entropy
    averaged over every step and sequence. Metrics: ``"cross_entropy"``, ``"baseline"`` and
    ``"accuracy"`` (of the 10 recalled symbols). Baseline: the memoryless strategy -- blank for
    ``T + 10`` steps, then a uniform guess among the 8 symbols -- scores
    ``10 log(8) / (T + 20)``.

    Example::

        >>> task = CopyTask(delay=5)
        >>> x, y = task.batch(1, torch.Generator().manual_seed(0))     # (1, 25), (1, 25)
        >>> x[0].tolist()
        [4, 7, 5, 0, 3, 3, 3, 7, 1, 3, 8, 8, 8, 8, 9, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8]
        >>> y[0].tolist()
        [8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 4, 7, 5, 0, 3, 3, 3, 7, 1, 3]
    """

    name = "copy"
    SYMBOLS, BLANK, DELIMITER, RECALL = 8, 8, 9, 10    # a_0..a_7, a_8, a_9; 10 symbols to copy
    vocab_size = input_size = output_size = 10
    every_step = True

    def __init__(self, delay: int = 100) -> None:
        self.delay = check_positive_int("delay", delay)           # T >= 1: the delimiter needs it
        self.length = self.delay + 2 * self.RECALL
        self.baseline = self.RECALL * math.log(self.SYMBOLS) / self.length

    def batch(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        check_positive_int("batch_size", batch_size)
        B, T, K = batch_size, self.delay, self.RECALL
        symbols = torch.randint(0, self.SYMBOLS, (B, K), generator=generator)       # (B, 10)
        inputs = torch.full((B, T + 2 * K), self.BLANK, dtype=torch.long)          # (B, T + 20)
        inputs[:, :K] = symbols
        inputs[:, K + T - 1] = self.DELIMITER                 # after the 10 symbols, T - 1 blanks
        targets = torch.full_like(inputs, self.BLANK)
        targets[:, T + K:] = symbols                          # T + 10 blanks, then the symbols
        return inputs, targets

    def _check(self, prediction: Tensor, target: Tensor) -> None:
        expected = (*target.shape, self.output_size)
        if tuple(prediction.shape) != expected or target.dim() != 2:
            raise ValueError(f"prediction must have shape (B, T + 20, {self.output_size}) = "
                             f"{expected}, one vector per step; got {tuple(prediction.shape)}")

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        self._check(prediction, target)
        return F.cross_entropy(prediction.flatten(0, 1), target.flatten())

    def metrics(self, prediction: Tensor, target: Tensor) -> dict[str, float]:
        recalled = prediction[:, -self.RECALL:].argmax(-1) == target[:, -self.RECALL:]
        return {"cross_entropy": self.loss(prediction, target).item(), "baseline": self.baseline,
                "accuracy": recalled.float().mean().item()}

    def __repr__(self) -> str:
        return f"CopyTask(delay={self.delay})"


def _smnist(**kwargs) -> Task:
    from .mnist import SequentialMNIST      # imported on use: it reads a 17 MB file

    return SequentialMNIST(**kwargs)


TASKS: dict[str, Callable[..., Task]] = {"adding": AddingTask, "recall": RecallTask,
                                         "copy": CopyTask, "smnist": _smnist}


def make_task(name: str, **kwargs) -> Task:
    """Build the named task, e.g. ``make_task("recall", gap=40)``."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    return TASKS[name](**kwargs)
