"""Compile the C++ kernels into the wheel; the package's metadata lives in pyproject.toml.

``pip wheel .`` (or ``python -m build``) compiles ``src/lstmlab/kernels/csrc/ext.cpp`` into
``lstmlab.kernels._C`` with portable flags (no ``-march=native``: the wheel runs on any CPU of
its architecture), on x86-64 also into ``lstmlab.kernels._C_avx2`` for CPUs with AVX2 and FMA,
and writes ``lstmlab/kernels/_C_sources.txt`` beside them: a hash of the kernel sources and
the torch version the modules were built against. The package loads a prebuilt module only when
both match what it finds at run time (see ``lstmlab/kernels/_build.py``); the built wheel
requires exactly that torch version, since a C++ extension is tied to torch's ABI.

An editable install (``pip install -e .``, run by ``make setup``) compiles nothing: a checkout
builds its kernels at first use, for its own CPU. ``LSTMLAB_NO_EXTENSION=1`` builds a wheel
without the compiled modules (it then compiles at first use, like a checkout).
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel

CSRC = Path("src") / "lstmlab" / "kernels" / "csrc"
RECORD = "_C_sources.txt"
# Portable: what every x86-64 (or aarch64) CPU runs. -fno-trapping-math lets GCC inline floorf,
# so the float32 activation loops vectorise (values are unchanged).
# -g0: no debug information (Python's own build flags ask for -g), a module 15x smaller.
CFLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-g0"]
# On x86-64 a second build for the CPUs with AVX2 and FMA (torch's "AVX2" capability and above),
# which lstmlab.kernels._build loads where torch reports that capability: about as fast as a
# -march=native build (benchmarks/portable.py), where the baseline is 1.1-1.2x slower.
AVX2_FLAGS = [*CFLAGS, "-mavx2", "-mfma"]
# setuptools' commands for an editable install (PEP 660 and the legacy one).
EDITABLE = {"editable_wheel", "develop"}


def sources_digest(folder: Path) -> str:
    """sha256 of the kernel sources; the same as ``lstmlab.kernels._build.sources_digest``."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.suffix in {".h", ".cpp"}:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def torch_release() -> str:
    import torch

    return torch.__version__.split("+")[0]  # 2.13.0+cpu -> 2.13.0


class PinnedTorchWheel(bdist_wheel):
    """A wheel that holds the compiled module requires the torch it was built against."""

    def write_wheelfile(self, wheelfile_base: str, *args: Any, **kwargs: Any) -> None:
        # Called on the wheel's dist-info, whether converted here or reused from pip's
        # metadata step (which keeps the declared requirement).
        super().write_wheelfile(wheelfile_base, *args, **kwargs)
        if not self.distribution.has_ext_modules():
            return
        metadata = Path(wheelfile_base) / "METADATA"
        lines = metadata.read_text(encoding="utf-8").splitlines(keepends=True)
        pinned = f"Requires-Dist: torch=={torch_release()}\n"
        # torch's own requirement (any specifier, no environment marker), not torchvision's.
        torch_line = re.compile(r"Requires-Dist:\s*torch\s*([<>=!~(][^;]*)?$")
        lines = [pinned if torch_line.match(line.strip()) else line for line in lines]
        metadata.write_text("".join(lines), encoding="utf-8")


def extension_options() -> dict[str, Any]:
    from torch.utils.cpp_extension import BuildExtension, CppExtension

    class Build(BuildExtension):
        """torch's BuildExtension, then the sources' hash and torch's version beside the module."""

        def run(self) -> None:
            if getattr(self, "editable_mode", False):  # an editable install never compiles
                return
            super().run()
            # One record beside the modules, for both.
            record = f"sources {sources_digest(CSRC)}\ntorch {torch_release()}\n"
            for ext in self.extensions:
                Path(self.get_ext_fullpath(ext.name)).with_name(RECORD).write_text(record)

        def build_extension(self, ext: Any) -> None:
            # Both modules compile the same ext.cpp: each gets its own folder of objects.
            temp = self.build_temp
            self.build_temp = os.path.join(temp, ext.name.rsplit(".", 1)[-1])
            try:
                super().build_extension(ext)
            finally:
                self.build_temp = temp

    builds = {"lstmlab.kernels._C": CFLAGS}
    if platform.machine().lower() in {"x86_64", "amd64"}:
        builds["lstmlab.kernels._C_avx2"] = AVX2_FLAGS
    depends = [str(path) for path in sorted(CSRC.iterdir())]
    extensions = [
        CppExtension(name, [str(CSRC / "ext.cpp")], extra_compile_args=flags, depends=depends)
        for name, flags in builds.items()
    ]
    return {"ext_modules": extensions, "cmdclass": {"build_ext": Build}}


editable = bool(EDITABLE.intersection(sys.argv[1:]))
skip = os.environ.get("LSTMLAB_NO_EXTENSION", "") not in {"", "0"}
options = {} if editable or skip else extension_options()
options.setdefault("cmdclass", {})["bdist_wheel"] = PinnedTorchWheel
setup(**options)
