"""Sampling text from a :class:`~lstmlab.models.LanguageModel`, one token at a time.

The prompt runs through the model once (:meth:`LanguageModel.forward`, one call over the whole
prompt); after that every new token costs one :meth:`LanguageModel.step` -- the sequence is
never re-run. Tokens are yielded as they are drawn, so a command line can print them as they come::

    for token in sample(model, vocab, prompt="def ", length=500, temperature=0.8, seed=0):
        print(token, end="", flush=True)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from lstmlab.data.vocab import EOS, Vocab
from lstmlab.models._common import StateLike
from lstmlab.models.language_model import LanguageModel


def sample(
    model: LanguageModel,
    vocab: Vocab,
    prompt: str = "",
    length: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
) -> Iterator[str]:
    r"""Continue ``prompt`` with ``length`` tokens drawn from the model, yielded one by one.

    Each token is drawn from :math:`\mathrm{softmax}(z / \tau)` over the ``top_k`` largest
    logits :math:`z` (all of them if ``top_k`` is None), with a ``torch.Generator`` seeded with
    ``seed``: the same model, prompt and seed give the same text. ``top_k=1`` is greedy decoding;
    :math:`\tau < 1` sharpens the distribution, :math:`\tau > 1` flattens it.

    The prompt is tokenized at the vocabulary's level; symbols not in the vocabulary read as
    ``"<unk>"`` (:meth:`Vocab.encode`). It is not yielded again. An empty prompt starts a fresh
    document: the model reads one line end from a zero state -- ``"<eos>"`` for a word-level
    vocabulary, ``"\n"`` for characters, ``"<unk>"`` if the vocabulary lacks it -- and the text
    continues from there, as after a line break in training.

    Each yielded piece is one token as text, so ``"".join(pieces)`` is the continuation at
    either level: a character as it is; a word with a space before it (none after a line end),
    ``"<eos>"`` as ``"\n"`` (:func:`~lstmlab.data.vocab.tokenize` made ``"<eos>"`` of newlines).

    The model runs in eval mode under ``torch.no_grad()``, switched on around each step and
    restored before each token is yielded: while the caller holds the iterator, its grad mode
    and the model's mode are its own. Errors in the arguments are raised at the call, not at
    the first ``next()``.

    Args:
        model: a language model over ``vocab``.
        vocab: its vocabulary, ``len(vocab) == model.vocab_size``.
        prompt: text to continue.
        length: tokens to generate (>= 0).
        temperature: :math:`\tau > 0`.
        top_k: keep the k most likely tokens (>= 1), or None for all.
        seed: seeds the generator; None draws a fresh seed.

    Example::

        >>> text = "".join(sample(model, vocab, prompt="The ", length=100, top_k=5, seed=1))
    """
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not 0 < temperature < float("inf")
    ):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None or an integer >= 1, got {top_k!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"length must be an integer >= 0, got {length!r}")
    if len(vocab) != model.vocab_size:
        raise ValueError(
            f"the vocabulary has {len(vocab)} tokens but the model predicts "
            f"{model.vocab_size}: they were not trained together"
        )
    ids = vocab.encode(vocab.tokenize(prompt))  # (P,)
    if len(ids) == 0:
        ids = vocab.encode([EOS if vocab.level == "word" else "\n"])  # (1,); 0 if absent
    return _tokens(model, vocab, ids, length, temperature, top_k, seed)


def _tokens(
    model: LanguageModel,
    vocab: Vocab,
    ids: Tensor,
    length: int,
    temperature: float,
    top_k: int | None,
    seed: int | None,
) -> Iterator[str]:
    device = model.embedding.weight.device
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    state: StateLike | None = None
    token: Tensor | None = None  # the last drawn token id (1,); None before the first draw
    previous = int(ids[-1])
    for _ in range(length):
        with _inference(model):
            if token is None:  # the whole prompt in one call
                logits, state = model(ids.to(device).unsqueeze(0))  # (1, P, V)
                logits = logits[:, -1]  # (1, V)
            else:
                logits, state = model.step(token, state)  # (1, V)
            token = _draw(logits, temperature, top_k, generator)  # (1,)
        yield _text(vocab, int(token), previous)
        previous = int(token)


def _text(vocab: Vocab, token: int, previous: int) -> str:
    """Token id as text that concatenates: words spaced, <eos> back to a newline."""
    word = vocab.tokens[token]
    if vocab.level == "char":
        return word
    if word == EOS:
        return "\n"
    return word if vocab.tokens[previous] == EOS else " " + word


def _draw(
    logits: Tensor, temperature: float, top_k: int | None, generator: torch.Generator
) -> Tensor:
    """One token id (1,) from softmax(logits (1, V) / temperature) over the top-k logits."""
    if not bool(torch.isfinite(logits).all()):  # softmax would make NaN of them, then fail
        raise ValueError("the model's logits are NaN or infinite: its weights are not usable")
    k = logits.shape[-1] if top_k is None else min(top_k, logits.shape[-1])
    top, index = logits.topk(k, dim=-1)  # (1, k), largest first
    probs = torch.softmax(top.double() / temperature, dim=-1)  # float64: tiny τ
    pick = torch.multinomial(probs, 1, generator=generator)  # (1, 1) in [0, k)
    return index.gather(-1, pick).view(1)


@contextmanager
def _inference(model: LanguageModel) -> Iterator[None]:
    """Eval mode and no gradients for one step, the caller's settings restored after."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(training)


__all__ = ["sample"]
