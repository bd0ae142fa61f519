"""Load (building it once per machine if need be) the C++ kernels of the fused sequence operations.

An installed wheel carries them compiled (see ``setup.py``): ``lstmlab.kernels._C`` with
portable flags and, on x86-64, ``lstmlab.kernels._C_avx2`` for CPUs with AVX2 and FMA (loaded
where torch reports that capability), beside a record of the sources' hash and the torch
version they were built against. They are used when both match the sources next to them and the
torch that runs, so a prebuilt module left in a checkout whose sources changed, or under another
torch, is never loaded.

Otherwise (a checkout, an editable install, a stale prebuilt module) the extension is compiled
with ``torch.utils.cpp_extension.load`` on first use, with ``-march=native``, and cached under
``$LSTMLAB_BUILD_DIR`` (default ``~/.cache/lstmlab``) in a folder named after a hash of the
sources (and their location), the torch version and install path, the flags and the CPU, so a
changed source, another checkout, another environment or another machine gets its own build. If
no compiler is available the layers fall back to the readable loop, with one warning.

The first build says so on stderr (it takes about a minute). Processes that build or load the
same folder take turns through a lock that the operating system releases when its holder dies,
so a build that was killed leaves nothing that makes the next process wait: torch's own lock
file, which a killed build leaves behind, is cleared by whoever holds that lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import platform
import sys
import warnings
from collections.abc import Iterator
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
# The modules a wheel build compiles (setup.py): portable, and on x86-64 one for CPUs with AVX2
# and FMA; and what it records beside them: "sources <sha256>" (sources_digest at build time)
# and "torch <release>" (the torch they were built against).
_PREBUILT = "lstmlab.kernels._C"
_PREBUILT_AVX2 = "lstmlab.kernels._C_avx2"
_RECORD = Path(__file__).with_name("_C_sources.txt")


def sources_digest(folder: Path = _SOURCES) -> str:
    """sha256 of the kernel sources (the ``.h`` and ``.cpp`` files); setup.py computes the same."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.suffix in {".h", ".cpp"}:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _prebuilt() -> ModuleType | None:
    """The module compiled into the wheel, if it was built from these sources for this torch."""
    try:
        lines = _RECORD.read_text(encoding="utf-8").splitlines()
        record = dict(line.split(" ", 1) for line in lines if " " in line)
        if record.get("sources") != sources_digest():
            return None  # stale: the sources beside it changed since it was built
    except OSError:
        return None  # no record: nothing was compiled at install time
    if record.get("torch") != torch.__version__.split("+")[0]:
        return None  # built against another torch: its ABI may differ
    # torch's own reading of the CPU: ATEN_CPU_CAPABILITY=default gives both the portable code.
    avx2 = torch.backends.cpu.get_cpu_capability() in {"AVX2", "AVX512"}
    for name in [_PREBUILT_AVX2, _PREBUILT] if avx2 else [_PREBUILT]:
        with contextlib.suppress(ImportError):  # not built here (another architecture)
            return importlib.import_module(name)
    return None


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
    # Two environments whose torch lives at different paths link against different libraries.
    digest.update(str(Path(torch.__file__).resolve().parent).encode())
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


_NAME = "lstmlab_fused"


@contextlib.contextmanager
def _turn(build_dir: Path) -> Iterator[None]:
    """Hold the build folder alone: an flock, released by the OS even if this process is killed.
    Holding it, a torch ``lock`` file in the folder can only be left by a build that died (every
    lstmlab build takes this lock first), so it is removed instead of waited on forever."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): torch's own lock file alone guards the build
        yield
        return
    with open(build_dir / ".lstmlab-build.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            with contextlib.suppress(FileNotFoundError):
                (build_dir / "lock").unlink()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@cache
def extension() -> Kernels | None:
    """The compiled kernels, or ``None`` (with a warning) if they cannot be built here."""
    prebuilt = _prebuilt()
    if prebuilt is not None:
        return Kernels(prebuilt)
    from torch.utils import cpp_extension

    try:
        import ninja  # the PyPI package ships the binary; put it where torch looks for it

        if ninja.BIN_DIR not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
    except ImportError:
        pass
    try:
        build_dir = _build_dir()
        with _turn(build_dir):
            if not (build_dir / f"{_NAME}.so").exists():
                print(
                    f"lstmlab: compiling the fused kernels once (about a minute) into {build_dir}",
                    file=sys.stderr,
                    flush=True,
                )
            module = cpp_extension.load(
                name=_NAME,
                sources=[str(_SOURCES / "ext.cpp")],
                build_directory=str(build_dir),
                extra_cflags=_CFLAGS,
                verbose=False,
            )
        return Kernels(module)
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
