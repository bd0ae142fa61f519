"""Which implementation runs a fused operation: the one switch ``LSTMLAB_BACKEND``.

========== ==================================================================================
``auto``   (the default) the C++ kernels for CPU tensors, the Triton kernels for CUDA tensors
``cpp``    the C++ kernels; a CUDA tensor is an error
``triton`` the Triton kernels, on CUDA tensors -- and on CPU tensors under Triton's interpreter
           (``TRITON_INTERPRET=1``, set before the kernels are first used: for tests)
``readable`` every layer runs the readable loop, as inside :func:`lstmlab.kernels.disabled`
========== ==================================================================================

This module is the only place that reads the variable. A fused operation asks :func:`route`
which implementation takes a tensor; an operator's CPU body asks :func:`cpu_kernel` whether the
Triton implementation stands in for the C++ one (``LSTMLAB_BACKEND=triton`` on the CPU), and
:func:`register_cuda` gives each operator that has a Triton implementation its CUDA kernel. A
path that cannot run says so: a missing Triton (or, on the CPU, a missing interpreter) under
``triton`` is an error, and a layer whose cell family has no Triton kernel warns once, naming
the family, before it runs the readable loop. The one-step routes of the generation path
(:mod:`lstmlab.kernels.step`) are C++ or torch ops and run under ``auto`` and ``cpp`` only.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lstmlab.nn import dispatch

VARIABLE = "LSTMLAB_BACKEND"
CHOICES = ("auto", "cpp", "triton", "readable")
INSTALL = "pip install 'lstmlab[gpu]'"

# The operators with a Triton implementation, by the module of lstmlab.kernels.triton that
# holds a function of the operator's name and schema (imported on first use).
TRITON_OPS = {
    "lstm_forward": "lstm",
    "lstm_backward": "lstm",
    "gru_forward": "gru",
    "gru_backward": "gru",
    "rnn_forward": "rnn",
    "rnn_backward": "rnn",
}


@torch.compiler.assume_constant_result
def setting() -> str:
    """The value of ``LSTMLAB_BACKEND`` (``auto`` when unset), checked; read on every call in
    eager mode and as a constant by ``torch.compile``."""
    value = os.environ.get(VARIABLE, "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise ValueError(
            f"{VARIABLE} must be one of {', '.join(CHOICES)}; got {os.environ[VARIABLE]!r}"
        )
    return value


def triton_installed() -> bool:
    """Whether the ``triton`` package can be imported here."""
    return importlib.util.find_spec("triton") is not None


def interpreted() -> bool:
    """Whether Triton's interpreter is on (``TRITON_INTERPRET=1``): kernels run on CPU tensors."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


@functools.cache
def warn_once(message: str) -> None:
    """Say ``message`` once per process (a path that cannot run, and what runs instead)."""
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def route(x: Tensor) -> str:
    """Which implementation takes a fused operation on ``x``: ``"cpp"``, ``"triton"`` or
    ``"readable"``. Meta tensors (shapes only) go where the setting sends CPU tensors. Raises
    where the setting asks for what cannot run: ``cpp`` on a CUDA tensor, ``triton`` without
    Triton or, on the CPU, without its interpreter."""
    choice = setting()
    device = x.device.type
    if choice == "readable":
        return "readable"
    if device in ("cpu", "meta"):
        if choice != "triton":
            return "cpp"
        if device == "cpu" and not (triton_installed() and interpreted()):
            raise RuntimeError(
                f"{VARIABLE}=triton on CPU tensors runs the Triton kernels under Triton's "
                "interpreter: set TRITON_INTERPRET=1 before the first layer call"
                + ("" if triton_installed() else f", with triton installed ({INSTALL})")
                + f"; for the C++ kernels set {VARIABLE}=auto or cpp"
            )
        return "triton"
    if device != "cuda":
        return "readable"  # no kernel for this device: torch ops, as before any kernel existed
    if choice == "cpp":
        raise RuntimeError(
            f"{VARIABLE}=cpp runs the C++ kernels, which take CPU tensors; got a CUDA tensor "
            f"(set {VARIABLE}=auto or triton for the Triton kernels)"
        )
    if not triton_installed():
        if choice == "triton":
            raise RuntimeError(f"{VARIABLE}=triton needs the triton package ({INSTALL})")
        warn_once(
            f"lstmlab: CUDA tensors without the triton package ({INSTALL}): the layers run the "
            "readable loop"
        )
        return "readable"
    return "triton"


def no_triton_kernel(family: str) -> None:
    """Warn once that ``family`` has no Triton kernel and its layers run the readable loop."""
    warn_once(
        f"lstmlab: {family} has no Triton kernel; on the Triton backend ({VARIABLE}="
        f"{setting()}) its layers run the readable loop"
    )


def triton_kernel(name: str) -> Callable[..., Any]:
    """The Triton implementation of the operator ``lstmlab::<name>`` (its module imported now)."""
    module = importlib.import_module(f"lstmlab.kernels.triton.{TRITON_OPS[name]}")
    return getattr(module, name)


def cpu_kernel(name: str, cpp: Callable[..., Any]) -> Callable[..., Any]:
    """What runs the operator ``name`` on CPU tensors: its Triton implementation under
    ``LSTMLAB_BACKEND=triton`` (where it has one), else the C++ kernel ``cpp``."""
    if name in TRITON_OPS and setting() == "triton":
        kernel = triton_kernel(name)
        if not importlib.import_module("lstmlab.kernels.triton._common").INTERPRETED:
            raise RuntimeError(
                "the Triton kernels were imported without Triton's interpreter, so they cannot "
                "take CPU tensors: set TRITON_INTERPRET=1 before the first layer call "
                f"(or {VARIABLE}=auto for the C++ kernels)"
            )
        return kernel
    return cpp


def register_cuda(op: Any, name: str, wrap: Callable[[Any], Any]) -> None:
    """Give the custom operator ``op`` (``lstmlab::<name>``) its Triton implementation as its
    CUDA kernel, where it has one; ``wrap`` post-processes the outputs as on the CPU."""
    if name not in TRITON_OPS:
        return

    def cuda_kernel(*args: Any) -> Any:
        if not triton_installed():
            raise RuntimeError(f"lstmlab::{name} on CUDA tensors needs triton ({INSTALL})")
        return wrap(triton_kernel(name)(*args))

    op.register_kernel("cuda", cuda_kernel)


def native_half(x: Tensor) -> bool:
    """Whether the implementation for ``x`` computes bfloat16/float16 itself (the Triton kernels:
    half-precision matmuls and storage, float32 arithmetic in the pointwise kernels) rather
    than in float32 copies (the C++ kernels)."""
    return route(x) == "triton"


def _torch_layer(x: Tensor) -> bool:
    """torch's own whole-stack LSTM kernel (oneDNN, cuDNN) is the ``auto`` choice, and the
    ``cpp`` one on CPU tensors; ``triton`` and ``readable`` mean lstmlab's Triton kernels and the
    readable loop for the standard LSTM too."""
    choice = setting()
    return choice == "auto" or (choice == "cpp" and x.device.type in ("cpu", "meta"))


dispatch.register_torch_layer_check(_torch_layer)
