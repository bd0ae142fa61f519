"""What a training run trains on: a generated or data-set task (:class:`TaskJob`) or a corpus read
in parallel streams by truncated BPTT (:class:`TextJob`); each builds its model, hands out batches,
computes the loss and evaluates. :func:`evaluate_split` scores a language model on a whole split
as the papers do."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from lstmlab.data import TokenStream, Vocab, make_task, split_corpus, stdlib_corpus, text_corpus
from lstmlab.data.mnist import SequentialMNIST
from lstmlab.data.ptb import CORPORA as PTB_CORPORA
from lstmlab.data.ptb import ptb_corpus, ptb_vocab
from lstmlab.models import LanguageModel, SequenceModel, detach_state
from lstmlab.train.settings import TrainConfig, layer_options


class TaskJob:
    """A task: a fresh training batch each step; the loss through the whole sequence.

    Validation: a generated task (adding, recall, copy) scores fixed batches drawn from seeds of
    their own (``"test"``: other seeds); a task with a data set (smnist, ``task.examples(split)``)
    scores the first ``eval_batches * batch_size`` validation examples while training, and the
    whole test split for ``evaluate("test")``. A task that predicts at every step (copy) gets a
    per-step model: embedding -> layers -> head at each step (a :class:`LanguageModel` whose
    output "vocabulary" is the task's categories).
    """

    def __init__(self, cfg: TrainConfig, rank: int, world: int) -> None:
        options: dict[str, dict[str, Any]] = {
            "adding": {"length": cfg.length},
            "recall": {"gap": cfg.gap},
            "copy": {"delay": cfg.delay},
            "smnist": {"mode": cfg.mnist_mode},
        }
        self.task = make_task(cfg.task, **options.get(cfg.task, {}))
        if self.task.every_step:
            if self.task.vocab_size != self.task.output_size:
                raise ValueError(
                    f"task {cfg.task!r} predicts at every step, which needs token "
                    f"inputs with vocab_size == output_size; got "
                    f"{self.task.vocab_size} and {self.task.output_size}"
                )
            self.model: nn.Module = LanguageModel(
                self.task.vocab_size,
                cfg.cell,
                embed_size=cfg.embed_size,
                hidden_size=cfg.hidden_size,
                num_layers=cfg.num_layers,
                **layer_options(cfg),
            )
        else:
            self.model = SequenceModel(
                cfg.cell,
                None if self.task.vocab_size else self.task.input_size,
                self.task.output_size,
                hidden_size=cfg.hidden_size,
                num_layers=cfg.num_layers,
                vocab_size=self.task.vocab_size,
                embed_size=cfg.embed_size,
                **layer_options(cfg),
            )
        self.rank, self.world, self.batch_size = rank, world, cfg.batch_size
        self.eval_batches = cfg.eval_batches
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.valid = self._batches("valid", limit=cfg.eval_batches * cfg.batch_size)
        self.vocab = None

    def _batches(self, split: str, limit: int | None = None) -> list[tuple[Tensor, Tensor]]:
        """Evaluation batches: the data set's split (its first ``limit`` examples), or fixed
        generated batches from the split's own seeds."""
        if hasattr(self.task, "examples"):
            x, y = self.task.examples(split)
            n = len(y) if limit is None else min(limit, len(y))
            return [
                (x[i : i + self.batch_size], y[i : i + self.batch_size])
                for i in range(0, n, self.batch_size)
            ]
        if split not in ("valid", "test"):
            raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
        seed = 10**9 if split == "valid" else 2 * 10**9
        return [
            self.task.batch(self.batch_size, torch.Generator().manual_seed(seed + k))
            for k in range(self.eval_batches)
        ]

    def predict(self, model: nn.Module, x: Tensor) -> Tensor:
        """The model's prediction: (B, output_size), or (B, T, output_size) for every_step."""
        out = model(x)
        return out[0] if self.task.every_step else out  # a LanguageModel adds its state

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        x, y = self.task.batch(self.batch_size, self.generator)  # the global batch ...
        return x[self.rank :: self.world], y[self.rank :: self.world]  # ... this process's rows

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, int]:
        x, y = batch
        return self.task.loss(self.predict(model, x), y), y.shape[0]

    @torch.no_grad()
    def evaluate(self, split: str = "valid") -> dict[str, float]:
        """The loss and the task's metrics, averaged over every example of the split."""
        batches = self.valid if split == "valid" else self._batches(split)
        count = sum(len(y) for _, y in batches)
        totals: dict[str, float] = {}
        for x, y in batches:
            prediction = self.predict(self.model, x)
            scores = {
                "loss": float(self.task.loss(prediction, y)),
                **self.task.metrics(prediction, y),
            }
            for k, v in scores.items():
                totals[k] = totals.get(k, 0.0) + v * len(y) / count
        return totals

    def state(self) -> dict[str, Tensor]:
        saved = {"generator": self.generator.get_state()}
        if isinstance(self.task, SequentialMNIST) and self.task.permutation is not None:
            saved["permutation"] = self.task.permutation  # permuted MNIST's pixel order
        return saved

    def load_state(self, tensors: dict[str, Tensor]) -> None:
        self.generator.set_state(tensors["generator"])
        if "permutation" in tensors:
            if not isinstance(self.task, SequentialMNIST):
                raise ValueError(
                    f"the checkpoint holds a pixel permutation, which task {self.task.name!r} "
                    "does not take"
                )
            self.task.set_permutation(tensors["permutation"])
            self.valid = self._batches("valid", limit=self.eval_batches * self.batch_size)


class TextJob:
    """Language modelling on a corpus by truncated BPTT over parallel streams.

    ``cfg.text`` names the corpus: ``None`` (the Python standard library's source), a file or
    folder (held out by :func:`split_corpus`: whole documents, or a single file's last parts;
    ``note`` says which), or ``"ptb-word"`` /
    ``"ptb-char"``: the Penn Treebank's own three splits, each one stream read whole
    (``max_chars`` does not apply), with its fixed vocabulary (:mod:`lstmlab.data.ptb`).
    """

    def __init__(self, cfg: TrainConfig, rank: int, world: int, vocab: Vocab | None) -> None:
        if cfg.text in PTB_CORPORA:
            texts = ptb_corpus(cfg.text)[1]
            train, valid, test = [texts["train"]], [texts["valid"]], [texts["test"]]
            self.vocab = vocab or ptb_vocab(cfg.text)
            self.note = f"{cfg.text}: the Penn Treebank's own train, validation and test splits"
        else:
            documents = (
                stdlib_corpus(cfg.max_chars)
                if cfg.text is None
                else text_corpus(cfg.text, cfg.max_chars)
            )
            train, valid, test, note = split_corpus(documents)
            self.note = f"{cfg.text or 'the Python standard library'}: {note}"
            self.vocab = vocab or Vocab.from_documents(train, level=cfg.level)
        self.test, self.bptt = test, cfg.bptt
        encode = self.encode
        self.stream = TokenStream(encode(train), cfg.batch_size, cfg.bptt)
        self.valid = TokenStream(encode(valid), max(1, min(cfg.batch_size, 8)), cfg.bptt)
        self.model = LanguageModel(
            len(self.vocab),
            cfg.cell,
            embed_size=cfg.embed_size,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout,
            tie_weights=cfg.tie_weights,
            **layer_options(cfg),
        )
        self.rank, self.world = rank, world
        self.carried: tuple[Tensor, ...] | Tensor | None = None  # state between chunks

    def encode(self, documents: list[str]) -> list[Tensor]:
        """Each document as token ids (N,)."""
        return [self.vocab.encode(self.vocab.tokenize(d)) for d in documents]

    def batch(self, step: int):
        k = step % len(self.stream)  # the chunk is a function of the step: resumable
        if k == 0:
            self.carried = None  # a new pass starts from zeros
        inputs, targets, starts = self.stream[k]
        rows = slice(self.rank, None, self.world)
        return inputs[rows], targets[rows], starts[rows]

    def loss(self, model: nn.Module, batch) -> tuple[Tensor, int]:
        inputs, targets, starts = batch
        logits, state = model(inputs, self.carried, starts)  # (B, T, V)
        self.carried = detach_state(state)  # truncated BPTT: keep the values, cut the graph
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return loss, targets.numel()

    @torch.no_grad()
    def evaluate(self, split: str = "valid") -> dict[str, float]:
        """Cross-entropy over every target of a held-out split, state carried throughout.

        ``"valid"`` reads the split in up to 8 parallel streams (quick, for training);
        ``"test"`` in one stream, so that every token after the first is scored with all of the
        split before it as context (Zaremba et al.'s test: batch 1).
        """
        if split == "valid":
            return _score(self.model, self.valid)
        if split == "test":
            return _score(self.model, TokenStream(self.encode(self.test), 1, self.bptt))
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")

    def state(self) -> dict[str, Tensor]:
        if self.carried is None:
            return {}
        parts = (self.carried,) if isinstance(self.carried, Tensor) else self.carried
        return {f"carried.{k}": p for k, p in enumerate(parts)}

    def load_state(self, tensors: dict[str, Tensor]) -> None:
        parts = [tensors[f"carried.{k}"] for k in range(len(tensors))]
        self.carried = None if not parts else parts[0] if len(parts) == 1 else tuple(parts)


def evaluate_split(
    model: LanguageModel, tokens: Tensor, batch_size: int = 1, bptt: int = 100
) -> dict[str, float]:
    """The exact loss of a language model on one split, as the papers compute it.

    ``tokens`` (N,) is read as one stream, Zaremba et al.'s reader: cut into ``batch_size``
    contiguous pieces (the last ``N mod batch_size`` tokens dropped), read ``bptt`` steps at a
    time with the state carried from chunk to chunk and never reset. Every token of a piece but
    its first is a target once: ``batch_size * (N // batch_size - 1)`` targets, so with
    ``batch_size=1`` all ``N - 1`` tokens after the first. Chunking changes nothing but speed
    (the same as feeding the tokens one at a time; tested).

    Returns ``{"loss": mean cross-entropy in nats, "perplexity": exp(loss), "bits_per_token":
    loss / ln 2, "tokens": targets scored}``.

    Example::

        >>> metrics = evaluate_split(model, vocab.encode(vocab.tokenize(texts["test"])))
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return _score(model, TokenStream([tokens], batch_size, bptt))
    finally:
        model.train(was_training)


def _score(model: nn.Module, stream: TokenStream) -> dict[str, float]:
    """Summed cross-entropy over every target of ``stream``, state carried from chunk to chunk
    (reset only where a document starts: ``stream`` of one document never resets)."""
    total, count, state = 0.0, 0, None
    for k in range(len(stream)):
        inputs, targets, starts = stream[k]
        logits, state = model(inputs, state, starts)  # (B, T, V)
        total += float(
            nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
        )
        count += targets.numel()
    loss = total / count
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 50.0)),
        "bits_per_token": loss / math.log(2),
        "tokens": count,
    }


def make_job(cfg: TrainConfig, rank: int = 0, world: int = 1, vocab: Vocab | None = None):
    """The job for ``cfg.task``: :class:`TextJob` for ``"text"``, else a :class:`TaskJob`."""
    if cfg.batch_size % world:
        raise ValueError(
            f"batch_size={cfg.batch_size} must be divisible by the number of processes ({world})"
        )
    return TextJob(cfg, rank, world, vocab) if cfg.task == "text" else TaskJob(cfg, rank, world)
