"""Carrying out a study's runs: each an ordinary :func:`lstmlab.train.train` run, resumed from
its last checkpoint, finished once its ``result.json`` exists; several at once in worker
processes (``lstmlab study``)."""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import json
import math
import multiprocessing
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from lstmlab.study.settings import Study
from lstmlab.train import TrainConfig, TrainingError, evaluate_checkpoint, train
from lstmlab.train.checkpoint._read import _read_meta

PER_RUN = ("cell", "seed", "out", "minutes")  # TrainConfig fields the study sets for each run


@dataclass(frozen=True)
class Run:
    """One training run of a study: a cell, a seed, a learning rate, a matched hidden size."""

    cell: str
    seed: int
    lr: float
    hidden_size: int
    params: int
    lr_in_name: bool = False  # a search study names runs by their rate

    @property
    def name(self) -> str:
        return f"{self.cell}-s{self.seed}" + (f"-lr{self.lr:.3g}" if self.lr_in_name else "")


def _execute(
    runs: list[Run],
    study: Study,
    minutes: float,
    out: Path,
    on_result: Callable[[dict], None] | None,
) -> list[dict]:
    """Train the runs not yet finished, ``study.workers`` at a time; all the runs' results."""
    jobs = [
        (
            dataclasses.replace(
                study.base,
                cell=r.cell,
                seed=r.seed,
                lr=r.lr,
                minutes=minutes,
                hidden_size=r.hidden_size,
                out=str(out / "runs" / r.name),
            ),
            {**dataclasses.asdict(r), "name": r.name},
        )
        for r in runs
    ]
    todo = [job for job in jobs if not (Path(job[0].out) / "result.json").exists()]
    report = on_result or (lambda result: None)
    if study.workers == 1 or len(todo) <= 1:
        for cfg, info in todo:
            report(train_run(cfg, info))
    else:
        threads = max(1, _cores() // study.workers)  # workers * threads <= cores
        with futures.ProcessPoolExecutor(
            min(study.workers, len(todo)),
            multiprocessing.get_context("spawn"),
            initializer=_worker_start,
            initargs=(threads, os.getpid()),
        ) as pool:
            pending = [pool.submit(train_run, cfg, info) for cfg, info in todo]
            try:
                for future in futures.as_completed(pending):
                    report(future.result())
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
    return [json.loads((Path(cfg.out) / "result.json").read_text()) for cfg, _ in jobs]


def _worker_start(threads: int, parent: int) -> None:
    """A worker's setup: its share of the cores, and a watchdog that ends it when the study's
    process is gone (killed with SIGKILL, the pool cannot stop its workers; they would train
    on, and a restarted study would write the same run's checkpoint from two processes)."""
    torch.set_num_threads(threads)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="lstmlab-study-watchdog").start()


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def train_run(cfg: TrainConfig, info: dict) -> dict:
    """Train one run to the end -- from its last checkpoint if it has one -- then write
    ``result.json`` (``info``, the steps done, seconds, the final validation metrics).

    A run whose loss became NaN or infinite (:class:`~lstmlab.train.TrainingError`, e.g. a
    search's largest learning rate) is finished too: ``"diverged": true``, validation loss
    ``inf``, its other metrics missing (NaN in the table), never picked by the search."""
    folder = Path(cfg.out)
    try:
        step = _read_meta(folder / "checkpoint")[1]["step"]
    except (ValueError, FileNotFoundError):
        step = None
    if step is None and folder.exists():
        shutil.rmtree(folder)  # killed before its first checkpoint: start over
    if step is not None:  # drop what was logged after the checkpoint
        log = folder / "metrics.jsonl"
        records = (
            [line for line in log.read_text().splitlines() if json.loads(line)["step"] <= step]
            if log.exists()
            else []
        )
        log.write_text("".join(line + "\n" for line in records))
    start = time.perf_counter()
    # A run killed after its last checkpoint but before result.json has nothing left to train:
    # its final metrics are those of the checkpoint.
    try:
        metrics = train(cfg, resume=step is not None, progress=False) or evaluate_checkpoint(
            folder / "checkpoint"
        )
        diverged = False
    except TrainingError:
        metrics, diverged = {"loss": math.inf}, True
    try:
        steps = _read_meta(folder / "checkpoint")[1]["step"]
    except (ValueError, FileNotFoundError):  # diverged before its first checkpoint
        steps = 0
    result = {
        **info,
        "steps": steps,
        "seconds": time.perf_counter() - start,
        "resumed": step is not None,
        "diverged": diverged,
        "valid": metrics,
    }
    (folder / "result.json.tmp").write_text(json.dumps(result, indent=1))
    os.replace(folder / "result.json.tmp", folder / "result.json")  # the run is finished
    return result
