"""The tensor files of a checkpoint, read header first.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the data. :func:`read_header` reads only the header
and checks that the declared tensors exactly fill the file, so what a file declares is bounded
by what is on disk; the model can then be checked against the declared shapes before anything
is allocated, and :func:`read_tensors` reads the data only once its size and sha256 are right.
"""

from __future__ import annotations

import hashlib
import math
import struct
from pathlib import Path

import safetensors.torch
import torch
from torch import Tensor

from lstmlab.train.checkpoint._files_in import file_size, loads, read_regular

# A tensor file may be as large as the tensors need; the header is small next to them.
MAX_TENSOR_FILE = 1 << 40
MAX_HEADER = 64 << 20
ITEM_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
}  # fmt: skip


def read_header(root: Path, name: str, expected_bytes: int) -> dict[str, tuple[int, ...]]:
    """The tensor shapes ``root / name`` declares, checked against its size before reading."""
    file = root / name
    size = file_size(root, name, MAX_TENSOR_FILE)
    if size != expected_bytes:
        raise ValueError(
            f"{file}: truncated or altered ({size} bytes, checkpoint.json says {expected_bytes})"
        )
    if size < 8:
        raise ValueError(f"{file}: not a valid safetensors file (only {size} bytes)")
    (length,) = struct.unpack("<Q", read_regular(root, name, MAX_TENSOR_FILE, count=8))
    if length > min(MAX_HEADER, size - 8):
        raise ValueError(f"{file}: not a valid safetensors file (header of {length} bytes)")
    header = loads(read_regular(root, name, MAX_TENSOR_FILE, start=8, count=length), file)
    if not isinstance(header, dict):
        raise ValueError(f"{file}: not a valid safetensors file (the header is not an object)")
    header.pop("__metadata__", None)
    shapes, end = {}, 0
    for key, entry in sorted(header.items(), key=lambda kv: _offsets(file, kv)[0]):
        begin, stop = _offsets(file, (key, entry))
        dtype, shape = entry.get("dtype"), entry.get("shape")
        if dtype not in ITEM_BYTES or not _is_shape(shape):
            raise ValueError(f"{file}: tensor {key}: bad dtype {dtype!r} or shape {shape!r}")
        if begin != end or stop - begin != math.prod(shape) * ITEM_BYTES[dtype]:
            raise ValueError(f"{file}: tensor {key}: its byte range does not fit its shape")
        shapes[key], end = tuple(shape), stop
    if 8 + length + end != size:
        raise ValueError(
            f"{file}: the tensors fill {end} bytes, the file holds {size - 8 - length}"
        )
    return shapes


def read_tensors(root: Path, files: dict, name: str) -> dict[str, Tensor]:
    """The tensors of ``root / name``, after its header, size and sha256 check out."""
    file = root / name
    expected = files.get(name)
    if expected is None:
        raise ValueError(f"{root / 'checkpoint.json'}: lists no {name}")
    read_header(root, name, expected["bytes"])
    data = read_regular(root, name, expected["bytes"])
    if hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise ValueError(f"{file}: corrupt (sha256 differs from checkpoint.json)")
    try:
        return safetensors.torch.load(data)
    except Exception as e:  # safetensors raises its own SafetensorError, or others
        message = " ".join(str(e).split())[:200]
        raise ValueError(f"{file}: not a valid safetensors file ({message})") from None


def check_finite(file: Path, tensors: dict[str, Tensor]) -> None:
    """Refuse NaN or infinite values: a model holding them computes garbage."""
    for key, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{file}: tensor {key} holds NaN or infinite values")


def _offsets(file: Path, item: tuple) -> tuple[int, int]:
    key, entry = item
    offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(o) is int and o >= 0 for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise ValueError(f"{file}: tensor {key}: bad data_offsets {offsets!r}")
    return offsets[0], offsets[1]


def _is_shape(shape: object) -> bool:
    return isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)
