"""Training: the settings (:mod:`.settings`), the jobs that pair data with a model
(:mod:`.jobs`), the loop -- backpropagation through time, truncated for text -- (:mod:`.loop`),
and checkpoints that resume exactly (:mod:`.checkpoint`). Built on :mod:`lstmlab.models` and
:mod:`lstmlab.data`; nothing here imports the study, the pictures or the command line.

Example::

    from lstmlab.train import TrainConfig, train
    train(TrainConfig(task="recall", gap=30, cell="lstm", steps=2000, out="runs/recall"))
"""

from lstmlab.train.jobs import TaskJob, TextJob, evaluate_split, make_job
from lstmlab.train.loop import (
    MetricsLog,
    RunStopped,
    StepDecay,
    TrainingError,
    evaluate_checkpoint,
    load_trained,
    train,
)
from lstmlab.train.settings import SCHEDULE, TrainConfig, layer_options

__all__ = [
    "TrainConfig",
    "TrainingError",
    "RunStopped",
    "TaskJob",
    "TextJob",
    "evaluate_split",
    "make_job",
    "layer_options",
    "train",
    "StepDecay",
    "MetricsLog",
    "load_trained",
    "evaluate_checkpoint",
    "SCHEDULE",
]
