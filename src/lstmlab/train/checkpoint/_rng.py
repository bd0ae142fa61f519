"""The global RNG states (torch CPU and CUDA, ``random``, ``numpy.random``) as JSON and back.

:mod:`lstmlab.train.checkpoint` saves them so that a resumed run draws the same numbers.
"""

from __future__ import annotations

import base64
import random

import numpy as np
import torch
from torch import Tensor


def _rng_state() -> dict:
    b64 = lambda t: base64.b64encode(t.numpy().tobytes()).decode()  # noqa: E731
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": b64(torch.get_rng_state()),
        "cuda": [b64(s) for s in torch.cuda.get_rng_state_all()]
        if torch.cuda.is_available()
        else [],
        "python": [version, list(mt), gauss],
        "numpy": [name, np.asarray(keys).tolist(), pos, has_gauss, cached],
    }


def _set_rng_state(rng: dict) -> None:
    def tensor(s: str) -> Tensor:
        return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)

    torch.set_rng_state(tensor(rng["torch"]))
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensor(s) for s in rng["cuda"]])
    version, mt, gauss = rng["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
