"""Training by backpropagation through time: one loop for tasks and language models.

:func:`train` reads top to bottom: build the job (data + model), the optimiser and schedule,
resume if asked, then for each step take a batch, compute the loss, backpropagate, clip, step;
evaluate, log and checkpoint every so often. It knows nothing of any cell: the model is built by
name from :mod:`lstmlab.registry`.

- A *task* job (``adding``, ``recall``) draws a fresh batch each step and backpropagates through
  the whole sequence (full BPTT).
- A *text* job streams a corpus in ``batch_size`` parallel streams, ``bptt`` steps at a time,
  carrying the recurrent state between chunks detached from the graph (truncated BPTT) and
  resetting a stream's state where a new document begins.

Under ``torchrun --nproc_per_node N`` the same command trains data-parallel
(``torch.distributed`` DDP; gloo on CPUs, NCCL on GPUs): every rank builds the same global batch
and takes its own rows, so N processes compute what one would on the global batch; rank 0 alone
logs and writes checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .checkpoint import load_checkpoint, read_config, read_vocab, save_checkpoint
from .data import TokenStream, Vocab, make_task, split_documents, stdlib_corpus, text_corpus
from .data.ptb import CORPORA as PTB_CORPORA, ptb_corpus, ptb_vocab
from .models import LanguageModel, SequenceModel, detach_state, init_forget_bias


def _setting(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Everything a run needs; stored in every checkpoint, so ``--resume`` rebuilds the run.

    Each field is also a command-line flag of ``lstmlab train`` (``--hidden-size 256``) and a key
    of its ``--config`` TOML file.
    """
    task: str = _setting("text", "'text' (a language model) or a task: 'adding', 'recall', "
                                 "'copy', 'smnist'")
    text: str | None = _setting(None, "text: a file or folder, or 'ptb-word' / 'ptb-char' (the "
                                      "Penn Treebank); default: the Python stdlib source")
    level: str = _setting("char", "text: 'char' or 'word' tokens (the ptb corpora set their own)")
    max_chars: int = _setting(3_000_000, "text: read at most this many characters")
    length: int = _setting(50, "adding: sequence length")
    gap: int = _setting(20, "recall: filler words between the fact and the question")
    delay: int = _setting(100, "copy: T, the steps between the symbols and their recall")
    mnist_mode: str = _setting("pixel", "smnist: 'pixel' (784 steps), 'permuted' or 'row' (28)")
    cell: str = _setting("lstm", "the cell, by name (see `lstmlab cells`)")
    hidden_size: int = _setting(128, "units per layer")
    num_layers: int = _setting(1, "stacked layers")
    embed_size: int = _setting(32, "embedding size for token inputs")
    dropout: float = _setting(0.0, "dropout on non-recurrent connections")
    forget_bias: float = _setting(1.0, "initial forget-gate bias of LSTM cells (Jozefowicz et "
                                       "al. 2015); 0 = torch's initialisation")
    recurrent_dropout: float = _setting(0.0, "variational dropout on h_{t-1} into the recurrent "
                                             "weights, one mask per sequence (Gal & Ghahramani "
                                             "2016)")
    zoneout: float = _setting(0.0, "probability that a unit of h (and c) keeps its previous value "
                                   "at a step (Krueger et al. 2016)")
    layer_norm: bool = _setting(False, "layer-normalised cells, 'lstm' and 'gru' only (Ba et al. "
                                       "2016)")
    tie_weights: bool = _setting(False, "text: share the embedding and output weights")
    optimizer: str = _setting("adam", "'adam' or 'sgd'")
    lr: float = _setting(2e-3, "learning rate")
    lr_decay: float = _setting(1.0, "multiply the learning rate by this ...")
    decay_every: int = _setting(1000, "... every this many steps")
    decay_start: int = _setting(0, "the first decay at this step (0: at decay_every)")
    init_scale: float = _setting(0.0, "initialise every parameter ~ U(-s, s) (Zaremba et al. "
                                      "2014: 0.1); 0: each module's own")
    clip: float = _setting(5.0, "clip the gradient norm to this (0: off)")
    batch_size: int = _setting(32, "the global batch, split across processes")
    bptt: int = _setting(100, "text: steps per truncated-BPTT chunk")
    steps: int = _setting(1000, "training steps")
    eval_every: int = _setting(200, "evaluate every this many steps")
    eval_batches: int = _setting(8, "tasks: fixed validation batches")
    checkpoint_every: int = _setting(200, "checkpoint every this many steps")
    patience: int = _setting(0, "stop after this many evaluations without improvement (0: never)")
    minutes: float = _setting(0.0, "stop (with a checkpoint) after this much time (0: no limit)")
    seed: int = _setting(0, "random seed")
    init_from: str | None = _setting(None, "start from the weights of this checkpoint (a run's "
                                           "checkpoint/ folder), e.g. the previous stage of a "
                                           "curriculum; the optimiser starts afresh")
    out: str = _setting("runs/run", "run folder: metrics.jsonl and checkpoint/")

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "batch_size", "bptt", "steps", "eval_every",
                     "checkpoint_every", "eval_batches", "decay_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.layer_norm and self.cell not in ("lstm", "gru"):
            raise ValueError(f"layer_norm applies to the cells 'lstm' and 'gru'; got "
                             f"cell={self.cell!r}")
        if not isinstance(self.decay_start, int) or self.decay_start < 0:
            raise ValueError(f"decay_start must be an integer >= 0, got {self.decay_start!r}")
        if self.task == "text" and self.text in PTB_CORPORA:
            self.level = PTB_CORPORA[self.text]        # the corpus is defined at its own level


def layer_options(cfg: TrainConfig) -> dict:
    """The layer's regularisers and layer norm, passed on only where switched on (so a model's
    config, and the checkpoints of runs without them, stay as they were)."""
    options = {"recurrent_dropout": cfg.recurrent_dropout, "zoneout": cfg.zoneout,
               "layer_norm": cfg.layer_norm}
    return {k: v for k, v in options.items() if v}


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the last good checkpoint is kept."""


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
        args = {"adding": {"length": cfg.length}, "recall": {"gap": cfg.gap},
                "copy": {"delay": cfg.delay}, "smnist": {"mode": cfg.mnist_mode}}.get(cfg.task, {})
        self.task = make_task(cfg.task, **args)
        if self.task.every_step:
            if self.task.vocab_size != self.task.output_size:
                raise ValueError(f"task {cfg.task!r} predicts at every step, which needs token "
                                 f"inputs with vocab_size == output_size; got "
                                 f"{self.task.vocab_size} and {self.task.output_size}")
            self.model: nn.Module = LanguageModel(
                self.task.vocab_size, cfg.cell, embed_size=cfg.embed_size,
                hidden_size=cfg.hidden_size, num_layers=cfg.num_layers, **layer_options(cfg))
        else:
            self.model = SequenceModel(
                cfg.cell, None if self.task.vocab_size else self.task.input_size,
                self.task.output_size, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
                vocab_size=self.task.vocab_size, embed_size=cfg.embed_size, **layer_options(cfg))
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
            return [(x[i:i + self.batch_size], y[i:i + self.batch_size])
                    for i in range(0, n, self.batch_size)]
        if split not in ("valid", "test"):
            raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
        seed = 10**9 if split == "valid" else 2 * 10**9
        return [self.task.batch(self.batch_size, torch.Generator().manual_seed(seed + k))
                for k in range(self.eval_batches)]

    def predict(self, model: nn.Module, x: Tensor) -> Tensor:
        """The model's prediction: (B, output_size), or (B, T, output_size) for every_step."""
        out = model(x)
        return out[0] if self.task.every_step else out     # a LanguageModel adds its state

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        x, y = self.task.batch(self.batch_size, self.generator)   # the global batch ...
        return x[self.rank::self.world], y[self.rank::self.world]  # ... this process's rows

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
            scores = {"loss": float(self.task.loss(prediction, y)),
                      **self.task.metrics(prediction, y)}
            for k, v in scores.items():
                totals[k] = totals.get(k, 0.0) + v * len(y) / count
        return totals

    def state(self) -> dict[str, Tensor]:
        saved = {"generator": self.generator.get_state()}
        if getattr(self.task, "permutation", None) is not None:
            saved["permutation"] = self.task.permutation        # permuted MNIST's pixel order
        return saved

    def load_state(self, tensors: dict[str, Tensor]) -> None:
        self.generator.set_state(tensors["generator"])
        if "permutation" in tensors:
            self.task.set_permutation(tensors["permutation"])
            self.valid = self._batches("valid", limit=self.eval_batches * self.batch_size)


class TextJob:
    """Language modelling on a corpus by truncated BPTT over parallel streams.

    ``cfg.text`` names the corpus: ``None`` (the Python standard library's source), a file or
    folder (split into documents by :func:`split_documents`), or ``"ptb-word"`` /
    ``"ptb-char"``: the Penn Treebank's own three splits, each one stream read whole
    (``max_chars`` does not apply), with its fixed vocabulary (:mod:`lstmlab.data.ptb`).
    """

    def __init__(self, cfg: TrainConfig, rank: int, world: int, vocab: Vocab | None) -> None:
        if cfg.text in PTB_CORPORA:
            texts = ptb_corpus(cfg.text)[1]
            train, valid, test = [texts["train"]], [texts["valid"]], [texts["test"]]
            self.vocab = vocab or ptb_vocab(cfg.text)
        else:
            documents = stdlib_corpus(cfg.max_chars) if cfg.text is None \
                else text_corpus(cfg.text, cfg.max_chars)
            train, valid, test = split_documents(documents)
            self.vocab = vocab or Vocab.from_documents(train, level=cfg.level)
        self.test, self.bptt = test, cfg.bptt
        encode = self.encode
        self.stream = TokenStream(encode(train), cfg.batch_size, cfg.bptt)
        self.valid = TokenStream(encode(valid), max(1, min(cfg.batch_size, 8)), cfg.bptt)
        self.model = LanguageModel(len(self.vocab), cfg.cell, embed_size=cfg.embed_size,
                                   hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
                                   dropout=cfg.dropout, tie_weights=cfg.tie_weights,
                                   **layer_options(cfg))
        self.rank, self.world = rank, world
        self.carried: tuple[Tensor, ...] | Tensor | None = None   # state between chunks

    def encode(self, documents: list[str]) -> list[Tensor]:
        """Each document as token ids (N,)."""
        return [self.vocab.encode(self.vocab.tokenize(d)) for d in documents]

    def batch(self, step: int):
        k = step % len(self.stream)            # the chunk is a function of the step: resumable
        if k == 0:
            self.carried = None                # a new pass starts from zeros
        inputs, targets, starts = self.stream[k]
        rows = slice(self.rank, None, self.world)
        return inputs[rows], targets[rows], starts[rows]

    def loss(self, model: nn.Module, batch) -> tuple[Tensor, int]:
        inputs, targets, starts = batch
        logits, state = model(inputs, self.carried, starts)        # (B, T, V)
        self.carried = detach_state(state)          # truncated BPTT: keep the values, cut the graph
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


def evaluate_split(model: LanguageModel, tokens: Tensor, batch_size: int = 1,
                   bptt: int = 100) -> dict[str, float]:
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
        logits, state = model(inputs, state, starts)                     # (B, T, V)
        total += float(nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                                   reduction="sum"))
        count += targets.numel()
    loss = total / count
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)),
            "bits_per_token": loss / math.log(2), "tokens": count}


def make_job(cfg: TrainConfig, rank: int = 0, world: int = 1, vocab: Vocab | None = None):
    """The job for ``cfg.task``: :class:`TextJob` for ``"text"``, else a :class:`TaskJob`."""
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the number of "
                         f"processes ({world})")
    return TextJob(cfg, rank, world, vocab) if cfg.task == "text" else TaskJob(cfg, rank, world)


def _distributed() -> tuple[int, int]:
    """Join the process group torchrun describes (gloo on CPUs, NCCL on GPUs); (rank, world)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def train(cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False,
          progress: bool = True, on_eval=None) -> dict[str, float]:
    """Train as ``cfg`` says; return the last validation metrics.

    With ``resume``, continue the run in ``cfg.out`` from its checkpoint exactly as if it had
    never stopped (weights, optimiser, schedule, RNG, data position, carried state). Without it
    the run starts afresh, with a new ``metrics.jsonl``; a ``cfg.out`` that already holds a
    checkpoint is a ``ValueError`` (its progress would be lost) unless ``overwrite``. A NaN or
    infinite loss raises :class:`TrainingError` naming the step, before any update is applied.
    ``on_eval(step, metrics, job)`` is called after every evaluation (e.g. to print samples).
    """
    rank, world = _distributed()
    out = Path(cfg.out)
    ckpt = out / "checkpoint"
    vocab = None
    if not resume:
        _start_afresh(out, overwrite, rank)
    if resume:
        # The run is rebuilt from its checkpoint; only the step and time budgets are the caller's.
        cfg = TrainConfig(**{**read_config(ckpt)["train"], "steps": cfg.steps,
                             "minutes": cfg.minutes, "out": cfg.out})
        saved_vocab = read_vocab(ckpt)
        vocab = Vocab.from_json(saved_vocab) if saved_vocab else None
    elif cfg.init_from:
        saved_vocab = read_vocab(cfg.init_from)   # token ids must mean what they meant there
        vocab = Vocab.from_json(saved_vocab) if saved_vocab else None
    torch.manual_seed(cfg.seed)
    job = make_job(cfg, rank, world, vocab)
    model = job.model
    if cfg.init_scale:
        for p in model.parameters():               # Zaremba et al. 2014: all weights U(-s, s)
            nn.init.uniform_(p, -cfg.init_scale, cfg.init_scale)
    if cfg.forget_bias:
        init_forget_bias(model, cfg.forget_bias)
    if cfg.init_from and not resume:               # a resumed run has its own weights already
        load_checkpoint(cfg.init_from, model=model, restore_rng=False)
    trained = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = (torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD)(
        model.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, cfg.decay_every, gamma=cfg.lr_decay) \
        if not cfg.decay_start else torch.optim.lr_scheduler.LambdaLR(
            optimizer, StepDecay(cfg.lr_decay, cfg.decay_every, cfg.decay_start))
    start, best, stale, metrics = 0, math.inf, 0, {}
    if resume:
        loaded = load_checkpoint(ckpt, model=model, optimizer=optimizer, scheduler=schedule)
        start, best, stale = loaded.step, loaded.extra["best"], loaded.extra["stale"]
        job.load_state(loaded.tensors)
    log = MetricsLog(out / "metrics.jsonl") if rank == 0 else None
    config = {"train": dataclasses.asdict(cfg), "model": model.config()}
    vocab_json = job.vocab.to_json() if job.vocab is not None else None

    def checkpoint(step: int) -> None:
        if rank == 0:
            save_checkpoint(ckpt, model=model, optimizer=optimizer, scheduler=schedule,
                            config=config, vocab=vocab_json, step=step,
                            extra={"best": best, "stale": stale}, tensors=job.state())
        if world > 1:
            dist.barrier()

    bar = _progress(cfg.steps, start, progress and rank == 0)
    seen, clock = 0, time.perf_counter()
    model.train()
    for step in range(start, cfg.steps):
        loss, count = job.loss(trained, job.batch(step))
        mean = loss.detach().clone()
        if world > 1:                          # every rank sees the same mean: same decisions
            dist.all_reduce(mean)
            mean /= world
        if not math.isfinite(float(mean)):
            raise TrainingError(f"the loss became {float(mean)} at step {step + 1}; nothing was "
                                f"updated, the last good checkpoint is {ckpt}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), cfg.clip if cfg.clip > 0 else math.inf)
        optimizer.step()
        schedule.step()
        seen += count * world
        rate = seen / (time.perf_counter() - clock)
        bar.update(loss=float(mean), rate=rate)
        if log is not None:
            log.write({"step": step + 1, "loss": float(mean), "grad_norm": float(norm),
                       "lr": schedule.get_last_lr()[0], "items_per_s": rate})
        done = step + 1
        if done % cfg.eval_every == 0 or done == cfg.steps:
            model.eval()
            metrics = job.evaluate()
            model.train()
            improved = metrics["loss"] < best
            best, stale = (metrics["loss"], 0) if improved else (best, stale + 1)
            if log is not None:
                log.write({"step": done, **{f"valid_{k}": v for k, v in metrics.items()}})
                bar.note(f"step {done}: " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
            if on_eval is not None and rank == 0:
                on_eval(done, metrics, job)
            if cfg.patience and stale >= cfg.patience:
                bar.note(f"stopping early: no improvement in {stale} evaluations")
                checkpoint(done)
                break
        out_of_time = cfg.minutes > 0 and time.perf_counter() - clock > 60 * cfg.minutes
        if world > 1:                          # the ranks' clocks differ: rank 0 decides
            flag = torch.tensor([float(out_of_time)])
            dist.broadcast(flag, 0)
            out_of_time = bool(flag)
        if done % cfg.checkpoint_every == 0 or done == cfg.steps or out_of_time:
            checkpoint(done)
        if out_of_time:
            bar.note(f"stopping at step {done}: the {cfg.minutes:g}-minute budget is spent")
            if done % cfg.eval_every:
                model.eval()
                metrics = job.evaluate()
                model.train()
                if log is not None:          # the log ends on the numbers train() returns
                    log.write({"step": done, **{f"valid_{k}": v for k, v in metrics.items()}})
            break
    bar.close()
    return metrics


def _start_afresh(out: Path, overwrite: bool, rank: int) -> None:
    """Make ``out`` ready for a new run: refuse to replace another run's checkpoint unless
    ``overwrite``; a fresh run starts its own metrics log."""
    ckpt = out / "checkpoint"
    if not overwrite and (ckpt.exists() or ckpt.with_name(ckpt.name + ".old").exists()):
        raise ValueError(f"{out} already holds a run (a checkpoint, which a new run would "
                         f"replace): resume it (--resume), choose another --out, or pass "
                         f"--overwrite to start afresh")
    if rank == 0:
        (out / "metrics.jsonl").unlink(missing_ok=True)


class StepDecay:
    """The learning-rate factor at step ``s``: ``gamma ** k``, ``k`` the decays passed, the first
    at step ``start``, then every ``every`` steps: ``k = 0`` before ``start``, else
    ``(s - start) // every + 1``. (``start = every`` is a plain step decay.) Zaremba et al.
    2014, small: ``StepDecay(0.5, E, 4 * E)`` for E steps per epoch -- lr 1 for 4 epochs, then
    halved every epoch. A plain object, so its state is saved as JSON in a checkpoint."""

    def __init__(self, gamma: float, every: int, start: int) -> None:
        self.gamma, self.every, self.start = gamma, every, start

    def __call__(self, step: int) -> float:
        return 1.0 if step < self.start else self.gamma ** ((step - self.start) // self.every + 1)


class MetricsLog:
    """Metrics appended as JSON lines (one object per line), flushed at once."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def write(self, record: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


class _progress:
    """A tqdm bar with loss and throughput, or nothing."""

    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

    def update(self, loss: float, rate: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", items_s=f"{rate:.0f}", refresh=False)
            self.bar.update()

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def load_trained(path: str | os.PathLike):
    """A trained model from a run's checkpoint folder: ``(model, vocab or None, TrainConfig)``."""
    from .models import build_model

    config = read_config(path)
    if "train" not in config or "model" not in config:
        raise ValueError(f"{path}: not a checkpoint written by lstmlab train")
    model = build_model(config["model"])
    load_checkpoint(path, model=model, restore_rng=False)
    saved_vocab = read_vocab(path)
    model.eval()
    return model, Vocab.from_json(saved_vocab) if saved_vocab else None, \
        TrainConfig(**config["train"])


def evaluate_checkpoint(path: str | os.PathLike, split: str = "valid") -> dict[str, float]:
    """The metrics of a run's checkpoint on ``split``, computed afresh.

    ``"valid"``: what training validates on. ``"test"``: a corpus's test split read as one
    stream (every token after the first; see :meth:`TextJob.evaluate`), a data set's whole test
    split (smnist: accuracy over all 10,000 images), or fixed test-seed batches of a generated
    task.
    """
    model, vocab, cfg = load_trained(path)
    job = make_job(cfg, vocab=vocab)
    job.model.load_state_dict(model.state_dict())
    if isinstance(job, TaskJob):       # the run's saved task state: permuted MNIST's pixel order
        job.load_state(load_checkpoint(path, restore_rng=False).tensors)
    job.model.eval()
    return job.evaluate(split)
