"""Training by backpropagation through time: one loop for tasks and language models.

:func:`train` reads top to bottom: build the job (data + model), the optimiser and schedule,
resume if asked, then for each step take a batch, compute the loss, backpropagate, clip, step;
evaluate, log and checkpoint every so often. It knows nothing of any cell: the model is built by
name from :mod:`lstmlab.nn.registry`.

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
import shutil
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from lstmlab.data import Vocab
from lstmlab.models.build import build_model, init_forget_bias, init_recurrent
from lstmlab.train.checkpoint import (
    is_checkpoint,
    load_checkpoint,
    read_config,
    read_vocab,
)
from lstmlab.train.jobs import TaskJob, make_job
from lstmlab.train.progress import Progress
from lstmlab.train.run_folder import (
    RunLock,
    RunStopped,
    StopSignals,
    TrainingError,
    save_or_fail,
    truncate_log,
)
from lstmlab.train.settings import BUDGET, SCHEDULE, TrainConfig

__all__ = [
    "TrainingError",
    "RunStopped",
    "train",
    "StepDecay",
    "MetricsLog",
    "load_trained",
    "evaluate_checkpoint",
]


def _distributed() -> tuple[int, int]:
    """Join the process group torchrun describes (gloo on CPUs, NCCL on GPUs); (rank, world)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    reschedule: bool = False,
    progress: bool = True,
    on_eval=None,
) -> dict[str, float]:
    """Train as ``cfg`` says; return the last validation metrics.

    With ``resume``, continue the run in ``cfg.out`` from its checkpoint exactly as if it had
    never stopped (weights, optimiser, schedule, RNG, data position, carried state). Without it
    the run starts afresh, with a new ``metrics.jsonl``; a ``cfg.out`` that already holds a
    checkpoint is a ``ValueError`` (its progress would be lost) unless ``overwrite``. A NaN or
    infinite loss raises :class:`TrainingError` naming the step, before any update is applied.
    ``cfg.out/checkpoint`` holds the latest state (to resume); ``cfg.out/best`` the weights of
    the lowest validation loss so far (what early stopping reports; a checkpoint without
    optimiser state, for ``lstmlab eval``/``sample``/``explore``).
    ``on_eval(step, metrics, job)`` is called after every evaluation (e.g. to print samples).
    ``reschedule`` (with ``resume``): the learning-rate schedule of ``cfg`` (``lr_decay``,
    ``decay_every``, ``decay_start``) replaces the run's from its current step on -- a run
    extended with more steps can move its decay too; the steps already taken are unchanged, and
    the change is logged in ``metrics.jsonl``.

    One run at a time holds ``cfg.out``: another is refused at once (:class:`TrainingError`).
    SIGINT or SIGTERM stop the run at the next step boundary with a checkpoint there, raising
    :class:`RunStopped` (a ``KeyboardInterrupt``); resuming it gives the uninterrupted run. A
    resumed run's ``metrics.jsonl`` drops what was logged after its checkpoint, so no step is
    logged twice. A save that fails (a full disk) is a :class:`TrainingError`; the checkpoint
    keeps its last complete state.
    """
    if reschedule and not resume:
        raise ValueError("reschedule changes a resumed run's schedule: pass resume=True too")
    rank, world = _distributed()
    with RunLock(Path(cfg.out), enabled=rank == 0):
        return _run(cfg, rank, world, resume, overwrite, reschedule, progress, on_eval)


def _run(
    cfg: TrainConfig,
    rank: int,
    world: int,
    resume: bool,
    overwrite: bool,
    reschedule: bool,
    progress: bool,
    on_eval,
) -> dict[str, float]:
    """:func:`train`, in a run folder this process holds."""
    out = Path(cfg.out)
    ckpt = out / "checkpoint"
    vocab = None
    if not resume:
        _start_afresh(out, overwrite, rank)
    if resume:
        # The run is rebuilt from its checkpoint; only the step and time budgets (and, asked to
        # reschedule, the schedule) are the caller's.
        stored = TrainConfig(
            **{
                **read_config(ckpt)["train"],
                **{k: getattr(cfg, k) for k in (*BUDGET, "out")},
            }
        )
        # The same schedule again is a plain resume (nothing to change, nothing logged).
        reschedule = reschedule and _plan(cfg) != _plan(stored)
        if reschedule:  # a plain decay in the form that can start mid-run
            cfg = dataclasses.replace(stored, **{k: getattr(cfg, k) for k in SCHEDULE})
            cfg = dataclasses.replace(cfg, decay_start=cfg.decay_start or cfg.decay_every)
        else:
            cfg = stored
        saved_vocab = read_vocab(ckpt)
        vocab = Vocab.from_json(saved_vocab) if saved_vocab else None
    elif cfg.init_from:
        saved_vocab = read_vocab(cfg.init_from)  # token ids must mean what they meant there
        vocab = Vocab.from_json(saved_vocab) if saved_vocab else None
    torch.manual_seed(cfg.seed)
    job = make_job(cfg, rank, world, vocab)
    model = job.model
    if cfg.init_scale:
        for p in model.parameters():  # Zaremba et al. 2014: all weights U(-s, s)
            nn.init.uniform_(p, -cfg.init_scale, cfg.init_scale)
    if cfg.forget_bias:
        init_forget_bias(model, cfg.forget_bias)
    if cfg.init != "default":  # chrono's horizon: the sequence the model is trained on
        t_max = cfg.t_max or getattr(getattr(job, "task", None), "length", cfg.bptt)
        init_recurrent(model, cfg.init, t_max)
    if cfg.init_from and not resume:  # a resumed run has its own weights already
        load_checkpoint(cfg.init_from, model=model, restore_rng=False)
    trained = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = (torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD)(
        model.parameters(), lr=cfg.lr
    )
    schedule = _schedule(stored if resume else cfg, optimizer)  # the one the run saved
    start, best, stale, metrics = 0, math.inf, 0, {}
    if resume:
        loaded = load_checkpoint(ckpt, model=model, optimizer=optimizer, scheduler=schedule)
        start, best, stale = loaded.step, loaded.extra["best"], loaded.extra["stale"]
        job.load_state(loaded.tensors)
        if reschedule:  # the new schedule as if it had held from the start
            schedule = _schedule(cfg, optimizer, done=start)
        if rank == 0:  # the steps after the checkpoint are run, and logged, again
            truncate_log(out / "metrics.jsonl", start)
    log = MetricsLog(out / "metrics.jsonl") if rank == 0 else None
    if reschedule and log is not None:
        log.write(
            {
                "step": start,
                "rescheduled": {k: getattr(cfg, k) for k in SCHEDULE},
                "lr": schedule.get_last_lr()[0],
            }
        )
    config = {"train": dataclasses.asdict(cfg), "model": model.config()}
    vocab_json = job.vocab.to_json() if job.vocab is not None else None

    def checkpoint(step: int) -> None:
        if rank == 0:
            save_or_fail(
                ckpt,
                model=model,
                optimizer=optimizer,
                scheduler=schedule,
                config=config,
                vocab=vocab_json,
                step=step,
                extra={"best": best, "stale": stale},
                tensors=job.state(),
            )
        if world > 1:
            dist.barrier()

    def validate(done: int) -> dict[str, float]:
        """Evaluate; keep the weights in ``best/`` when they are the best so far; log."""
        nonlocal best, stale
        model.eval()
        metrics = job.evaluate()
        model.train()
        improved = metrics["loss"] < best
        best, stale = (metrics["loss"], 0) if improved else (best, stale + 1)
        if improved and rank == 0:  # early stopping keeps these weights, not the last
            save_or_fail(
                out / "best",
                model=model,
                config=config,
                vocab=vocab_json,
                step=done,
                extra={f"valid_{k}": v for k, v in metrics.items()},
                tensors=job.state(),
            )  # e.g. permuted MNIST's pixel order
        if log is not None:
            log.write({"step": done, **{f"valid_{k}": v for k, v in metrics.items()}})
            bar.note(f"step {done}: " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        if on_eval is not None and rank == 0:
            on_eval(done, metrics, job)
        return metrics

    if rank == 0 and progress and getattr(job, "note", None):
        print(job.note, flush=True)  # what the corpus holds out
    bar = Progress(cfg.steps, start, progress and rank == 0)
    seen, clock = 0, time.perf_counter()
    with StopSignals() as stop, bar:  # the bar ends before any error's line
        model.train()
        for step in range(start, cfg.steps):
            loss, count = job.loss(trained, job.batch(step))
            mean = loss.detach().clone()
            if world > 1:  # every rank sees the same mean: same decisions
                dist.all_reduce(mean)
                mean /= world
            if not math.isfinite(float(mean)):
                raise TrainingError(
                    f"the loss became {float(mean)} at step {step + 1}; nothing was "
                    f"updated, the last good checkpoint is {ckpt}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = nn.utils.clip_grad_norm_(
                model.parameters(), cfg.clip if cfg.clip > 0 else math.inf
            )
            optimizer.step()
            schedule.step()
            seen += count * world
            rate = seen / (time.perf_counter() - clock)
            bar.update(loss=float(mean), rate=rate)
            if log is not None:
                log.write(
                    {
                        "step": step + 1,
                        "loss": float(mean),
                        "grad_norm": float(norm),
                        "lr": schedule.get_last_lr()[0],
                        "items_per_s": rate,
                    }
                )
            done = step + 1
            if done % cfg.eval_every == 0 or done == cfg.steps:
                metrics = validate(done)
                if cfg.patience and stale >= cfg.patience:
                    bar.note(f"stopping early: no improvement in {stale} evaluations")
                    checkpoint(done)
                    break
            out_of_time = cfg.minutes > 0 and time.perf_counter() - clock > 60 * cfg.minutes
            signum = stop.received or 0
            if world > 1:  # the ranks' clocks and signals differ: rank 0 decides
                flags = torch.tensor([float(out_of_time), float(signum)])
                dist.broadcast(flags, 0)
                out_of_time, signum = bool(flags[0]), int(flags[1])
            if out_of_time and done % cfg.eval_every and done != cfg.steps:
                metrics = validate(done)  # the log ends on the numbers train() returns
            if done % cfg.checkpoint_every == 0 or done == cfg.steps or out_of_time or signum:
                checkpoint(done)
            if signum:
                raise RunStopped(signum, done, out)
            if out_of_time:
                bar.note(f"stopping at step {done}: the {cfg.minutes:g}-minute budget is spent")
                break
    return metrics


def _plan(cfg: TrainConfig) -> tuple[float, int, int]:
    """The schedule of ``cfg``, with a plain step decay's start made explicit (``decay_start`` 0
    means ``decay_every``)."""
    return cfg.lr_decay, cfg.decay_every, cfg.decay_start or cfg.decay_every


def _schedule(cfg: TrainConfig, optimizer: torch.optim.Optimizer, done: int = 0):
    """The learning-rate schedule of ``cfg``; ``done > 0``: a LambdaLR already ``done`` steps in
    (it needs the optimiser's ``initial_lr``, which a first schedule set, and a ``decay_start``;
    a StepLR would keep the current rate rather than compute it)."""
    if not cfg.decay_start:
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg.decay_every, gamma=cfg.lr_decay)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, StepDecay(cfg.lr_decay, cfg.decay_every, cfg.decay_start), last_epoch=done - 1
    )


def _start_afresh(out: Path, overwrite: bool, rank: int) -> None:
    """Make ``out`` ready for a new run: refuse to replace another run's checkpoint unless
    ``overwrite``; a fresh run starts its own metrics log and best weights."""
    ckpt = out / "checkpoint"
    if not overwrite and (ckpt.exists() or ckpt.with_name(ckpt.name + ".old").exists()):
        raise ValueError(
            f"{out} already holds a run (a checkpoint, which a new run would "
            f"replace): resume it (--resume), choose another --out, or pass "
            f"--overwrite to start afresh"
        )
    if rank == 0:
        (out / "metrics.jsonl").unlink(missing_ok=True)
        if is_checkpoint(out / "best"):  # the replaced run's best weights go with it
            shutil.rmtree(out / "best")


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
        try:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:  # a full disk: one line, like a failed checkpoint save
            raise TrainingError(f"could not write {self.path}: {e}") from None


def load_trained(path: str | os.PathLike):
    """A trained model from a run's checkpoint folder: ``(model, vocab or None, TrainConfig)``.

    The checkpoint is checked before anything is allocated (its config against the schema, the
    model's size against what ``model.safetensors`` declares); weights holding NaN or infinite
    values are refused. Every problem is a one-line ``ValueError`` naming the file.
    """
    return _load_trained(path)[:3]


def _load_trained(path: str | os.PathLike):
    """:func:`load_trained`, plus the run's other saved tensors (a task's state)."""
    config = read_config(path)
    if "train" not in config or "model" not in config:
        raise ValueError(f"{path}: not a checkpoint written by lstmlab train")
    model = build_model(config["model"])
    loaded = load_checkpoint(path, model=model, restore_rng=False, finite=True)
    model.eval()
    return (
        model,
        Vocab.from_json(loaded.vocab) if loaded.vocab else None,
        TrainConfig(**loaded.config["train"]),
        loaded.tensors,
    )


def evaluate_checkpoint(path: str | os.PathLike, split: str = "valid") -> dict[str, float]:
    """The metrics of a run's checkpoint on ``split``, computed afresh.

    ``"valid"``: what training validates on. ``"test"``: a corpus's test split read as one
    stream (every token after the first; see :meth:`TextJob.evaluate`), a data set's whole test
    split (smnist: accuracy over all 10,000 images), or fixed test-seed batches of a generated
    task. ``path`` may be a run folder, its ``checkpoint/``, or the ``checkpoint.old`` a save
    killed between its renames leaves.
    """
    model, vocab, cfg, tensors = _load_trained(path)
    job = make_job(cfg, vocab=vocab)
    job.model.load_state_dict(model.state_dict())
    if isinstance(job, TaskJob):  # the run's saved task state: permuted MNIST's pixel order
        try:
            job.load_state(tensors)
        except (KeyError, RuntimeError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: the saved task state does not fit the task ({e})") from None
    job.model.eval()
    return job.evaluate(split)
