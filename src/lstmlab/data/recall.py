"""The post's example as a task: "I grew up in France ... I speak fluent *French*"."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmlab.data.task import check_prediction
from lstmlab.nn._checks import check_positive_int

# The post's example, "I grew up in France ... I speak fluent French": one language per country,
# so the answer is a class. Every word is a single token.
LANGUAGES = {
    "france": "french",
    "germany": "german",
    "spain": "spanish",
    "italy": "italian",
    "japan": "japanese",
    "china": "chinese",
    "russia": "russian",
    "brazil": "portuguese",
    "greece": "greek",
    "sweden": "swedish",
    "poland": "polish",
    "egypt": "arabic",
}
FACTS = (
    "i grew up in {} .",
    "i was born in {} .",
    "my family lived in {} .",
    "we once lived in {} .",
)  # six words each: aligned batches
QUERY = "i speak fluent"
# The filler grammar: plausible sentences that name no country and no language.
_SUBJECTS = ("we", "my sister", "the children", "our neighbours", "my father", "a friend")
_PREDICATES = (
    "walked to the market",
    "played in the park",
    "read a book",
    "cooked dinner",
    "watched the rain",
    "went to school",
    "fed the cat",
    "painted the fence",
    "sang a song",
    "visited the museum",
)
_THINGS = ("the weather", "the summer", "the river", "the house", "the road")
_STATES = ("was mild", "was long", "was quiet", "was cold", "was lovely")
FILLERS = tuple(f"{s} {p} ." for s in _SUBJECTS for p in _PREDICATES) + tuple(
    f"{t} {s} ." for t in _THINGS for s in _STATES
)


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
        country = torch.randint(0, self.output_size, (B,), generator=generator)  # (B,) targets
        fact = torch.randint(0, len(FACTS), (B,), generator=generator)  # (B,)
        # ceil(gap / shortest sentence) sentences always cover the gap
        per_row = -(-self.gap // min(map(len, self._fillers)))
        picks = torch.randint(0, len(FILLERS), (B, per_row), generator=generator)
        rows = []
        for c, f, sentences in zip(country.tolist(), fact.tolist(), picks.tolist()):
            filler = [w for s in sentences for w in self._fillers[s]][: self.gap]
            rows.append(self._facts[f][c] + filler + self._query)
        return torch.tensor(rows, dtype=torch.long), country  # (B, T), (B,)

    def loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        check_prediction(prediction, target, self.output_size)
        return F.cross_entropy(prediction, target)

    def metrics(self, prediction: Tensor, target: Tensor) -> dict[str, float]:
        check_prediction(prediction, target, self.output_size)
        return {"accuracy": (prediction.argmax(-1) == target).float().mean().item()}

    def __repr__(self) -> str:
        return f"RecallTask(gap={self.gap}, num_languages={self.output_size})"
