"""The schema of a training run's config (``{"train": ..., "model": ...}``) in a checkpoint.

``train`` is a :class:`~lstmlab.train.TrainConfig`: its fields are read from the dataclass, so a
new setting needs no change here, with bounds where a value sizes memory or time (a hostile
``hidden_size`` of 10^7 must be refused, not allocated). ``model`` is a model's ``config()``,
its kind and cell from the registries. :func:`check_run` checks that the parts agree.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    create_model,
)

from lstmlab.data.ptb import CORPORA as PTB_CORPORA
from lstmlab.data.tasks import TASKS
from lstmlab.data.vocab import LEVELS
from lstmlab.models.build import parse_init
from lstmlab.nn.registry import VARIANTS
from lstmlab.train.settings import TrainConfig, layer_options

# Far above any run in the papers this library follows, far below what would exhaust memory
# before the tensor files' own sizes are checked.
MAX_WIDTH, MAX_LAYERS, MAX_VOCAB, MAX_SEQUENCE = 1 << 16, 256, 1 << 24, 100_000
# The validation batches of a generated task are built at once: rows x steps, bounded.
MAX_VALIDATION = 50_000_000
# Not a corpus: training on them reads system files (or, for devices, never ends).
SYSTEM = ("/", "/etc", "/dev", "/proc", "/sys", "/boot", "/root", "/run", "/var/run")


def _choice(names: Any) -> Any:
    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"{value!r} is not one of {', '.join(map(repr, names))}")
        return value

    return AfterValidator(check)


def _corpus(text: str | None) -> str | None:
    if text is None or text in PTB_CORPORA:
        return text
    if "\0" in text:
        raise ValueError("a path with a NUL byte")
    path = Path(text).resolve()
    if str(path) == "/" or any(path.is_relative_to(s) for s in SYSTEM[1:]):
        raise ValueError(f"{text!r} is a system location ({path}), not a corpus")
    if path.exists() and not (path.is_file() or path.is_dir()):
        raise ValueError(f"{text!r} is not a regular file or folder")
    return text


def _init(init: str) -> str:
    parse_init(init)  # a ValueError naming the choices
    return init


def _fraction(strict_below: float = 1.0) -> Any:
    return Field(ge=0.0, lt=strict_below)


Size = Annotated[StrictInt, Field(ge=1, le=MAX_WIDTH)]
Layers = Annotated[StrictInt, Field(ge=1, le=MAX_LAYERS)]
Fraction = Annotated[float, _fraction()]
Cell = Annotated[str, _choice(VARIANTS)]

BOUNDS: dict[str, Any] = {
    "task": _choice(("text", *TASKS)),
    "text": AfterValidator(_corpus),
    "level": _choice(LEVELS),
    "mnist_mode": _choice(("pixel", "permuted", "row")),
    "cell": _choice(VARIANTS),
    "init": AfterValidator(_init),
    "t_max": Field(ge=0, le=MAX_SEQUENCE),
    "optimizer": _choice(("adam", "sgd")),
    "max_chars": Field(ge=1, le=1 << 40),
    "length": Field(ge=2, le=MAX_SEQUENCE),
    "gap": Field(ge=0, le=MAX_SEQUENCE),
    "delay": Field(ge=0, le=MAX_SEQUENCE),
    "hidden_size": Field(ge=1, le=MAX_WIDTH),
    "embed_size": Field(ge=1, le=MAX_WIDTH),
    "num_layers": Field(ge=1, le=MAX_LAYERS),
    "dropout": _fraction(),
    "recurrent_dropout": _fraction(),
    "zoneout": _fraction(),
    "lr": Field(gt=0.0, le=1e6),
    "lr_decay": Field(gt=0.0, le=1e6),
    "init_scale": Field(ge=0.0, le=1e6),
    "clip": Field(ge=0.0),
    "batch_size": Field(ge=1, le=MAX_WIDTH),
    "bptt": Field(ge=1, le=MAX_SEQUENCE),
    "eval_batches": Field(ge=1, le=10_000),
    "minutes": Field(ge=0.0),
    "seed": Field(ge=-(2**63), le=2**64 - 1),
}


def _settings_model() -> type[BaseModel]:
    hints = typing.get_type_hints(TrainConfig)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(TrainConfig):
        kind = hints[f.name]
        kind = {int: StrictInt, bool: StrictBool}.get(kind, kind)
        if f.name in ("decay_every", "decay_start", "steps", "eval_every", "checkpoint_every"):
            kind = Annotated[kind, Field(ge=0, le=2**53)]
        if f.name in BOUNDS:
            kind = Annotated[kind, BOUNDS[f.name]]
        fields[f.name] = (kind, f.default)
    config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
    return create_model("TrainSettings", __config__=config, **fields)


TrainSettings = _settings_model()


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
    cell: Cell
    hidden_size: Size
    num_layers: Layers
    embed_size: Size
    recurrent_dropout: Fraction = 0.0
    zoneout: Fraction = 0.0
    layer_norm: StrictBool = False


class LanguageConfig(_Model):
    kind: Literal["language"]
    vocab_size: Annotated[StrictInt, Field(ge=1, le=MAX_VOCAB)]
    dropout: Fraction
    tie_weights: StrictBool


class SequenceConfig(_Model):
    kind: Literal["sequence"]
    input_size: Annotated[StrictInt, Field(ge=1, le=MAX_WIDTH)] | None
    output_size: Annotated[StrictInt, Field(ge=1, le=MAX_VOCAB)]
    vocab_size: Annotated[StrictInt, Field(ge=1, le=MAX_VOCAB)] | None
    bidirectional: StrictBool


class RunConfig(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    train: TrainSettings  # type: ignore[valid-type]
    model: Annotated[LanguageConfig | SequenceConfig, Field(discriminator="kind")]


def check_run(run: RunConfig, step: int, vocab: dict | None, extra: dict, resumable: bool) -> str:
    """The first disagreement between the parts of a run's checkpoint, as ``field: problem``, or
    an empty string. ``resumable``: the checkpoint holds optimizer state (``checkpoint/``, not
    ``best/``), so it carries what a resumed run continues from."""
    train: Any = run.train  # a model made from TrainConfig's fields at import
    model = run.model
    for name in ("cell", "hidden_size", "num_layers", "embed_size"):
        ours, theirs = getattr(model, name), getattr(train, name)
        if ours != theirs:
            return f"config.model.{name}: {ours!r}, config.train says {theirs!r}"
    options = {k: getattr(model, k) for k in ("recurrent_dropout", "zoneout", "layer_norm")}
    if {k: v for k, v in options.items() if v} != layer_options(train):
        return "config.model: its layer options differ from config.train's"
    if train.task == "text":
        if model.kind != "language" or vocab is None:
            return "vocab: a text run needs a language model and its vocabulary"
        if (size := len(vocab["tokens"])) != model.vocab_size:
            return f"vocab: {size} tokens, config.model.vocab_size is {model.vocab_size}"
    elif vocab is not None:
        return f"vocab: a {train.task!r} run has no vocabulary"
    else:
        length = {"adding": train.length, "recall": train.gap, "copy": train.delay}.get(
            train.task, 1
        )
        if train.batch_size * train.eval_batches * length > MAX_VALIDATION:
            return "config.train: batch_size x eval_batches x sequence length is too large"
    if step > train.steps:
        return f"step: {step}, beyond the run's {train.steps} steps"
    return _check_extra(extra, resumable)


def _check_extra(extra: dict, resumable: bool) -> str:
    if resumable and not {"best", "stale"} <= extra.keys():
        return "extra: a resumable checkpoint needs best and stale"
    for key, value in extra.items():
        if key == "stale":
            if type(value) is not int or value < 0:
                return f"extra.stale: {value!r} is not an integer >= 0"
        elif key == "best" or key.startswith("valid_"):
            if type(value) not in (int, float) or math.isnan(value) or value == -math.inf:
                return f"extra.{key}: {value!r} is not a number"
        else:
            return f"extra.{key}: unknown key"
    return ""
