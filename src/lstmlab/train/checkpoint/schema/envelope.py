"""The schema of ``checkpoint.json`` itself, whatever run wrote it: format, counters, files, RNG.

Every key is known (others are refused by name), every number typed and bounded, and the tensor
files are the three names a checkpoint may hold, so no entry can name a path elsewhere.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

# Integers JSON carries exactly (a float64 mantissa); a step count beyond that is not a count.
MAX_COUNT = 2**53
Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
FileName = Literal["model.safetensors", "optimizer.safetensors", "state.safetensors"]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


class FileEntry(_Strict):
    bytes: Annotated[StrictInt, Field(ge=8, le=1 << 40)]
    sha256: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]


class SavedState(_Strict):
    """An optimizer's or scheduler's state dict as JSON (its tensors in their own file)."""

    class_: StrictStr = Field(alias="class", max_length=100)
    state_dict: dict[StrictStr, Any]


class Rng(_Strict):
    """The global RNG states: torch's as base64, Python's and numpy's Mersenne Twisters."""

    torch: Annotated[StrictStr, Field(max_length=1 << 16)]
    cuda: Annotated[list[Annotated[StrictStr, Field(max_length=1 << 16)]], Field(max_length=64)]
    # JSON has lists, not tuples: these two are lists of a fixed form
    python: Annotated[
        tuple[StrictInt, Annotated[list[StrictInt], Field(max_length=625)], StrictFloat | None],
        Field(strict=False),
    ]
    numpy: Annotated[
        tuple[
            StrictStr,
            Annotated[list[StrictInt], Field(max_length=624)],
            StrictInt,
            StrictInt,
            StrictFloat,
        ],
        Field(strict=False),
    ]


class Vocabulary(_Strict):
    """A :class:`~lstmlab.data.Vocab` as JSON."""

    level: Literal["char", "word"]
    tokens: Annotated[list[StrictStr], Field(min_length=1, max_length=1 << 24)]


class Envelope(_Strict):
    """``checkpoint.json``: what :func:`~lstmlab.train.checkpoint.save_checkpoint` writes."""

    format: Literal["lstmlab-checkpoint"]
    version: Literal[1]
    step: Count
    epoch: Count
    config: dict[StrictStr, Any]
    vocab: dict[StrictStr, Any] | None  # any JSON here; a training run's is a Vocabulary
    extra: dict[StrictStr, Any]
    optimizer: SavedState | None
    scheduler: SavedState | None
    rng: Rng
    files: dict[FileName, FileEntry]
