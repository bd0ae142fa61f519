"""The schema of ``checkpoint.json``, in one place: :func:`validate` checks a parsed file.

Every checkpoint must match :class:`~.envelope.Envelope`; one whose config holds ``train`` or
``model`` (what ``lstmlab train`` writes) must also match :class:`~.run.RunConfig`, and its parts
must agree (:func:`~.run.check_run`). Failures are one line: the file, the field, the problem.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from lstmlab.train.checkpoint.schema.envelope import Envelope, Vocabulary
from lstmlab.train.checkpoint.schema.run import RunConfig, check_run
from lstmlab.train.settings import TrainConfig

__all__ = ["validate", "validate_run", "is_run"]


def validate(file: Path, meta: dict) -> None:
    """Refuse ``meta`` (parsed from ``file``) unless lstmlab could have written it."""
    envelope = _checked(file, Envelope, meta, "")
    if is_run(meta["config"]):
        run = _checked(file, RunConfig, meta["config"], "config.")
        if meta["vocab"] is not None:
            _checked(file, Vocabulary, meta["vocab"], "vocab.")
        problem = check_run(
            run, envelope.step, meta["vocab"], meta["extra"], meta["optimizer"] is not None
        )
        if problem:
            raise ValueError(f"{file}: {problem}")
        try:  # the settings' own checks, as a fresh run gets them
            TrainConfig(**meta["config"]["train"])
        except (TypeError, ValueError) as e:
            raise ValueError(f"{file}: config.train: {e}") from None


def validate_run(file: Path, config: dict) -> RunConfig:
    """``config`` checked as a training run's config."""
    return _checked(file, RunConfig, config, "config.")


def is_run(config: dict) -> bool:
    """Whether ``config`` claims to be a training run's (then it must be a whole one)."""
    return "train" in config or "model" in config


def _checked(file: Path, schema, value: dict, prefix: str):
    try:
        return schema.model_validate(value)
    except ValidationError as e:
        errors = e.errors(include_url=False)
        first = errors[0]
        # a model config's loc names its kind after "model": the tag, not a key of the file
        loc = [p for i, p in enumerate(first["loc"]) if not (i == 1 and first["loc"][0] == "model")]
        where = prefix + ".".join(str(part) for part in loc)
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        message = message.removeprefix("Value error, ")
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise ValueError(f"{file}: {where}: {message}{more}") from None
