"""The settings of a training run: :class:`TrainConfig`, stored in every checkpoint."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from lstmlab.data.ptb import CORPORA as PTB_CORPORA
from lstmlab.models.build import parse_init


def _setting(default, help: str):
    return field(default=default, metadata={"help": help})


# The learning-rate schedule: what ``train(..., resume=True, reschedule=True)`` may change.
SCHEDULE = ("lr_decay", "decay_every", "decay_start")
# What a resumed run may change besides its schedule: how long it goes on.
BUDGET = ("steps", "minutes")


@dataclass
class TrainConfig:
    """Everything a run needs; stored in every checkpoint, so ``--resume`` rebuilds the run.

    Each field is also a command-line flag of ``lstmlab train`` (``--hidden-size 256``) and a key
    of its ``--config`` TOML file.
    """

    task: str = _setting(
        "text", "'text' (a language model) or a task: 'adding', 'recall', 'copy', 'smnist'"
    )
    text: str | None = _setting(
        None,
        "text: a file or folder, or 'ptb-word' / 'ptb-char' (the "
        "Penn Treebank); default: the Python stdlib source",
    )
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
    forget_bias: float = _setting(
        1.0,
        "initial forget-gate bias of LSTM cells (Jozefowicz et "
        "al. 2015); 0 = torch's initialisation",
    )
    init: str = _setting(
        "default",
        "initialisation of the recurrent layers: 'default' (each layer's own), 'chrono' (gate "
        "biases for dependencies up to --t-max steps; Tallec & Ollivier 2018; replaces "
        "--forget-bias), 'orthogonal' (recurrent weights, per gate block), 'identity' "
        "(identity recurrent weights and zero biases: IRNN, Le et al. 2015); join with '+', "
        "e.g. 'chrono+orthogonal'",
    )
    t_max: int = _setting(
        0, "chrono: the longest dependency, in steps; 0: the task's sequence length (text: bptt)"
    )
    recurrent_dropout: float = _setting(
        0.0,
        "variational dropout on h_{t-1} into the recurrent "
        "weights, one mask per sequence (Gal & Ghahramani "
        "2016)",
    )
    zoneout: float = _setting(
        0.0,
        "probability that a unit of h (and c) keeps its previous value "
        "at a step (Krueger et al. 2016)",
    )
    layer_norm: bool = _setting(
        False, "layer-normalised cells, 'lstm' and 'gru' only (Ba et al. 2016)"
    )
    tie_weights: bool = _setting(False, "text: share the embedding and output weights")
    optimizer: str = _setting("adam", "'adam' or 'sgd'")
    lr: float = _setting(2e-3, "learning rate")
    lr_decay: float = _setting(1.0, "multiply the learning rate by this ...")
    decay_every: int = _setting(1000, "... every this many steps")
    decay_start: int = _setting(0, "the first decay at this step (0: at decay_every)")
    init_scale: float = _setting(
        0.0,
        "initialise every parameter ~ U(-s, s) (Zaremba et al. 2014: 0.1); 0: each module's own",
    )
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
    init_from: str | None = _setting(
        None,
        "start from the weights of this checkpoint (a run "
        "folder or its checkpoint/), e.g. the previous stage "
        "of a curriculum; the optimiser starts afresh",
    )
    out: str = _setting("runs/run", "run folder: metrics.jsonl and checkpoint/")

    def __post_init__(self) -> None:
        for name in (
            "hidden_size",
            "num_layers",
            "batch_size",
            "bptt",
            "steps",
            "eval_every",
            "checkpoint_every",
            "eval_batches",
            "decay_every",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.layer_norm and self.cell not in ("lstm", "gru"):
            raise ValueError(
                f"layer_norm applies to the cells 'lstm' and 'gru'; got cell={self.cell!r}"
            )
        parse_init(self.init)  # a ValueError naming the choices
        if not isinstance(self.t_max, int) or isinstance(self.t_max, bool) or self.t_max < 0:
            raise ValueError(f"t_max must be an integer >= 0, got {self.t_max!r}")
        if self.t_max and self.t_max <= 2:
            raise ValueError(f"t_max must be > 2 (or 0: the sequence length), got {self.t_max}")
        if not isinstance(self.decay_start, int) or self.decay_start < 0:
            raise ValueError(f"decay_start must be an integer >= 0, got {self.decay_start!r}")
        if self.task == "text" and self.text in PTB_CORPORA:
            self.level = PTB_CORPORA[self.text]  # the corpus is defined at its own level


# The settings in which a task's defaults differ from TrainConfig's: what ``lstmlab train --task
# NAME`` (and :func:`task_config`) use for a setting not given. The evidence for recall's is in
# the training guide (docs/guide/training.md, "Recall from scratch").
TASK_DEFAULTS: dict[str, dict[str, object]] = {
    # chrono with T_max = the sequence length: the LSTM leaves the plateau at gap 100 within
    # 500-750 steps, where a forget bias of 1 to 3 leaves it at chance after 3000
    "recall": {"init": "chrono"},
}


def flag_help(field: dataclasses.Field) -> str:
    """A setting's ``--help`` line: its help, its default and each task's own default (``%``
    escaped for argparse)."""
    by_task = "".join(
        f"; --task {task}: {values[field.name]}"
        for task, values in TASK_DEFAULTS.items()
        if field.name in values
    )
    return f"{field.metadata['help']} (default: {field.default}{by_task})".replace("%", "%%")


def task_config(**settings) -> TrainConfig:
    """The settings of a fresh run: ``settings``, then the defaults of ``settings["task"]``
    (:data:`TASK_DEFAULTS`), then :class:`TrainConfig`'s.

    Example: ``task_config(task="recall", gap=100)`` is the run ``lstmlab train --task recall
    --gap 100`` makes."""
    task = settings.get("task", TrainConfig.task)
    defaults = TASK_DEFAULTS.get(task, {}) if isinstance(task, str) else {}
    return TrainConfig(**{**defaults, **settings})


def layer_options(cfg: TrainConfig) -> dict:
    """The layer's regularisers and layer norm, passed on only where switched on (so a model's
    config, and the checkpoints of runs without them, stay as they were)."""
    options = {
        "recurrent_dropout": cfg.recurrent_dropout,
        "zoneout": cfg.zoneout,
        "layer_norm": cfg.layer_norm,
    }
    return {k: v for k, v in options.items() if v}
