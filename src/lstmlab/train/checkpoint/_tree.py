"""State dicts as JSON plus named tensors, for :mod:`lstmlab.train.checkpoint`.

An optimizer's state dict nests tensors in dicts keyed by parameter index, in lists and tuples;
:func:`_split` turns it into JSON with each tensor moved out under a dotted key (the key it gets
in the safetensors file), :func:`_join` puts it back together. Also here: the check that a
config is JSON with string keys, and the CPU copies that safetensors writes.
"""

from __future__ import annotations

import json
from typing import Any

from torch import Tensor


def _split(obj: Any, key: str, tensors: dict[str, Tensor]) -> Any:
    """``obj`` as JSON, each tensor moved into ``tensors`` under its dotted key."""
    if isinstance(obj, Tensor):
        tensors[key] = obj
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _split(v, f"{key}.{k}".lstrip("."), tensors) for k, v in obj.items()}
        # optimizer state is keyed by parameter index; JSON object keys are strings only
        return {
            "__items__": [[k, _split(v, f"{key}.{k}".lstrip("."), tensors)] for k, v in obj.items()]
        }
    if isinstance(obj, (list, tuple)):
        items = [_split(v, f"{key}.{i}".lstrip("."), tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"state value {key} of type {type(obj).__name__} cannot be saved")


def _join(obj: Any, tensors: dict[str, Tensor]) -> Any:
    """Undo :func:`_split`."""
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__tuple__" in obj:
        return tuple(_join(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {k: _join(v, tensors) for k, v in obj["__items__"]}
    return {k: _join(v, tensors) for k, v in obj.items()}


def _cpu_copies(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    # copies, because safetensors refuses tensors that share memory (tied weights)
    return {k: t.detach().to("cpu", copy=True).contiguous() for k, t in tensors.items()}


def _check_json(value: Any, name: str) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} is not JSON-serialisable: {e}") from None
    # json.dumps turns int keys into strings silently: an id -> token vocab would come back changed
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if bad := [k for k in v if not isinstance(k, str)]:
                raise TypeError(f"{name} has a non-string key {bad[0]!r}; JSON keys are strings")
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
