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
from .models import LanguageModel, SequenceModel, detach_state, init_forget_bias


def _setting(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Everything a run needs; stored in every checkpoint, so ``--resume`` rebuilds the run.

    Each field is also a command-line flag of ``lstmlab train`` (``--hidden-size 256``) and a key
    of its ``--config`` TOML file.
    """
    task: str = _setting("text", "'text' (a language model) or a task: 'adding', 'recall'")
    text: str | None = _setting(None, "text: a file or folder; default: the Python stdlib source")
    level: str = _setting("char", "text: 'char' or 'word' tokens")
    max_chars: int = _setting(3_000_000, "text: read at most this many characters")
    length: int = _setting(50, "adding: sequence length")
    gap: int = _setting(20, "recall: filler words between the fact and the question")
    cell: str = _setting("lstm", "the cell, by name (see `lstmlab cells`)")
    hidden_size: int = _setting(128, "units per layer")
    num_layers: int = _setting(1, "stacked layers")
    embed_size: int = _setting(32, "embedding size for token inputs")
    dropout: float = _setting(0.0, "dropout on non-recurrent connections")
    forget_bias: float = _setting(1.0, "initial forget-gate bias of LSTM cells (Jozefowicz et "
                                       "al. 2015); 0 = torch's initialisation")
    tie_weights: bool = _setting(False, "text: share the embedding and output weights")
    optimizer: str = _setting("adam", "'adam' or 'sgd'")
    lr: float = _setting(2e-3, "learning rate")
    lr_decay: float = _setting(1.0, "multiply the learning rate by this ...")
    decay_every: int = _setting(1000, "... every this many steps")
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


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the last good checkpoint is kept."""


class TaskJob:
    """A generated task: a fresh batch each step; the loss through the whole sequence."""

    def __init__(self, cfg: TrainConfig, rank: int, world: int) -> None:
        args = {"adding": {"length": cfg.length}, "recall": {"gap": cfg.gap}}.get(cfg.task, {})
        self.task = make_task(cfg.task, **args)
        self.model: nn.Module = SequenceModel(
            cfg.cell, None if self.task.vocab_size else self.task.input_size,
            self.task.output_size, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
            vocab_size=self.task.vocab_size, embed_size=cfg.embed_size)
        self.rank, self.world, self.batch_size = rank, world, cfg.batch_size
        self.generator = torch.Generator().manual_seed(cfg.seed)
        # The validation set: fixed batches from a seed of their own.
        self.valid = [self.task.batch(cfg.batch_size, torch.Generator().manual_seed(10**9 + k))
                      for k in range(cfg.eval_batches)]
        self.vocab = None

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        x, y = self.task.batch(self.batch_size, self.generator)   # the global batch ...
        return x[self.rank::self.world], y[self.rank::self.world]  # ... this process's rows

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, int]:
        x, y = batch
        return self.task.loss(model(x), y), y.shape[0]

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for x, y in self.valid:
            prediction = self.model(x)
            scores = {"loss": float(self.task.loss(prediction, y)),
                      **self.task.metrics(prediction, y)}
            for k, v in scores.items():
                totals[k] = totals.get(k, 0.0) + v / len(self.valid)
        return totals

    def state(self) -> dict[str, Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state(self, tensors: dict[str, Tensor]) -> None:
        self.generator.set_state(tensors["generator"])


class TextJob:
    """Language modelling on a corpus by truncated BPTT over parallel streams."""

    def __init__(self, cfg: TrainConfig, rank: int, world: int, vocab: Vocab | None) -> None:
        documents = stdlib_corpus(cfg.max_chars) if cfg.text is None \
            else text_corpus(cfg.text, cfg.max_chars)
        train, valid, _ = split_documents(documents)
        self.vocab = vocab or Vocab.from_documents(train, level=cfg.level)

        def encode(docs: list[str]) -> list[Tensor]:
            return [self.vocab.encode(self.vocab.tokenize(d)) for d in docs]

        self.stream = TokenStream(encode(train), cfg.batch_size, cfg.bptt)
        self.valid = TokenStream(encode(valid), max(1, min(cfg.batch_size, 8)), cfg.bptt)
        self.model = LanguageModel(len(self.vocab), cfg.cell, embed_size=cfg.embed_size,
                                   hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
                                   dropout=cfg.dropout, tie_weights=cfg.tie_weights)
        self.rank, self.world = rank, world
        self.carried: tuple[Tensor, ...] | Tensor | None = None   # state between chunks

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
    def evaluate(self) -> dict[str, float]:
        """Cross-entropy over every target of the validation split, state carried throughout."""
        total, count, state = 0.0, 0, None
        for k in range(len(self.valid)):
            inputs, targets, starts = self.valid[k]
            logits, state = self.model(inputs, state, starts)
            total += float(nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                                       reduction="sum"))
            count += targets.numel()
        loss = total / count
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)),
                "bits_per_token": loss / math.log(2)}

    def state(self) -> dict[str, Tensor]:
        if self.carried is None:
            return {}
        parts = (self.carried,) if isinstance(self.carried, Tensor) else self.carried
        return {f"carried.{k}": p for k, p in enumerate(parts)}

    def load_state(self, tensors: dict[str, Tensor]) -> None:
        parts = [tensors[f"carried.{k}"] for k in range(len(tensors))]
        self.carried = None if not parts else parts[0] if len(parts) == 1 else tuple(parts)


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


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True,
          on_eval=None) -> dict[str, float]:
    """Train as ``cfg`` says; return the last validation metrics.

    With ``resume``, continue the run in ``cfg.out`` from its checkpoint exactly as if it had
    never stopped (weights, optimiser, schedule, RNG, data position, carried state). A NaN or
    infinite loss raises :class:`TrainingError` naming the step, before any update is applied.
    ``on_eval(step, metrics, job)`` is called after every evaluation (e.g. to print samples).
    """
    rank, world = _distributed()
    out = Path(cfg.out)
    ckpt = out / "checkpoint"
    vocab = None
    if resume:
        # The run is rebuilt from its checkpoint; only the step budget may grow.
        cfg = TrainConfig(**{**read_config(ckpt)["train"], "steps": cfg.steps, "out": cfg.out})
        saved_vocab = read_vocab(ckpt)
        vocab = Vocab.from_json(saved_vocab) if saved_vocab else None
    torch.manual_seed(cfg.seed)
    job = make_job(cfg, rank, world, vocab)
    model = job.model
    if cfg.forget_bias:
        init_forget_bias(model, cfg.forget_bias)
    trained = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = (torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD)(
        model.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, cfg.decay_every, gamma=cfg.lr_decay)
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
            break
    bar.close()
    return metrics


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


def evaluate_checkpoint(path: str | os.PathLike) -> dict[str, float]:
    """The validation metrics of a run's checkpoint, computed afresh."""
    model, vocab, cfg = load_trained(path)
    job = make_job(cfg, vocab=vocab)
    job.model.load_state_dict(model.state_dict())
    job.model.eval()
    return job.evaluate()
