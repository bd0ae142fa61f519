"""Build (once per machine) and load the C++ kernels of the fused sequence operations.

The extension is compiled with ``torch.utils.cpp_extension.load`` on first use and cached under
``$LSTMLAB_BUILD_DIR`` (default ``~/.cache/lstmlab``) in a folder named after a hash of the
sources (and their location), the torch version and the CPU, so a changed source, another
checkout or another machine gets its own build. If no compiler is available the layers fall
back to the readable loop, with one warning.
"""

from __future__ import annotations

import hashlib
import os
import platform
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

_SOURCES = Path(__file__).parent / "csrc"
# -march=native is safe: the build folder is keyed by this machine's CPU. -fno-trapping-math
# lets GCC inline floorf, so the float32 activation loops vectorise (values are unchanged).
_CFLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math"]


def _cpu_signature() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        flags = next((ln for ln in lines if ln.startswith("flags")), "")
        model = next((ln for ln in lines if ln.startswith("model name")), "")
    except OSError:
        flags = model = ""
    return f"{platform.machine()}|{model}|{flags}"


def _build_dir() -> Path:
    digest = hashlib.sha256()
    for path in sorted(_SOURCES.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(torch.__version__.encode() + _cpu_signature().encode())
    digest.update(" ".join(_CFLAGS).encode())
    # The build commands name the sources' absolute path, so two checkouts sharing one folder
    # would make ninja rebuild at every switch: each checkout gets its own.
    digest.update(str(_SOURCES.resolve()).encode())
    root = Path(os.environ.get("LSTMLAB_BUILD_DIR", Path.home() / ".cache" / "lstmlab"))
    path = root / f"fused-{digest.hexdigest()[:16]}"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Kernels:
    """The compiled module with every tensor argument made contiguous on the way in: the
    kernels read raw row-major memory, so a transposed, sliced or expanded weight, state or
    input must be laid out densely first (``contiguous()`` returns a dense tensor as it is)."""

    def __init__(self, module: ModuleType) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        kernel = getattr(self._module, name)

        def dense(*args: Any) -> Any:
            return kernel(*(a.contiguous() if isinstance(a, Tensor) else a for a in args))

        dense.__name__ = dense.__qualname__ = name
        setattr(self, name, dense)  # found directly from now on: no lookup per call
        return dense


@cache
def extension() -> Kernels | None:
    """The compiled kernels, or ``None`` (with a warning) if they cannot be built here."""
    from torch.utils import cpp_extension

    try:
        import ninja  # the PyPI package ships the binary; put it where torch looks for it

        if ninja.BIN_DIR not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
    except ImportError:
        pass
    try:
        return Kernels(
            cpp_extension.load(
                name="lstmlab_fused",
                sources=[str(_SOURCES / "ext.cpp")],
                build_directory=str(_build_dir()),
                extra_cflags=_CFLAGS,
                verbose=False,
            )
        )
    except Exception as error:  # no compiler, no ninja, a failed build: stay correct, go slow
        warnings.warn(
            f"lstmlab: fused kernels unavailable, using the readable loop ({error})",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def compiled() -> Kernels:
    """The compiled kernels, for an op reached only where :func:`extension` built them."""
    kernels = extension()
    if kernels is None:
        raise RuntimeError("lstmlab: the fused kernels are not built on this machine")
    return kernels
