"""The wheel carries the compiled kernels: installed in a fresh environment with no compiler on
PATH, the fused layers load the prebuilt module on the first call (nothing compiled, nothing
written to the build folder) and agree with the readable loop; a prebuilt module whose sources
changed, or that was built for another torch, is never loaded."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
import torch

from lstmlab.kernels import _build

ROOT = Path(__file__).resolve().parent.parent

# Run inside the fresh environment: where lstmlab comes from, which module the kernels are, and
# a peephole LSTM's forward and backward against the readable loop in float64.
CHECK = """
import sys
from pathlib import Path
import torch
import lstmlab
from lstmlab import kernels
from lstmlab.kernels import _build

site, expected = Path(sys.argv[1]).resolve(), sys.argv[2]
assert Path(lstmlab.__file__).resolve().is_relative_to(site), lstmlab.__file__
loaded = kernels.extension()
assert loaded is not None and loaded._module.__name__ == expected, (loaded, expected)
assert Path(loaded._module.__file__).resolve().is_relative_to(site), loaded._module.__file__

torch.manual_seed(0)
layer = lstmlab.LSTM(4, 8, peephole=True).double()
x = torch.randn(7, 3, 4, dtype=torch.float64, requires_grad=True)

def run():
    x.grad = None
    layer.zero_grad()
    out = layer(x)[0]
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    return [out.detach(), x.grad.clone()] + [p.grad.clone() for p in layer.parameters()]

fused = run()
used = [name for name in vars(loaded) if name != "_module"]
assert any(n.endswith("_forward") for n in used) and any(n.endswith("_backward") for n in used)
with kernels.disabled():
    readable = run()
for a, b in zip(fused, readable, strict=True):
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
print("ok", used)
"""


def _work_tree_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the files to build from are unknown")
    return [line for line in out.splitlines() if (ROOT / line).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the work tree (a build leaves build/ and *.egg-info)."""
    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no C++ compiler: the wheel cannot be built here")
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    for name in _work_tree_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation"]
        + ["-w", str(tmp / "dist")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    (built,) = (tmp / "dist").glob("lstmlab-*.whl")
    return built


def test_the_wheel_holds_the_compiled_module_and_pins_torch(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        record = archive.read("lstmlab/kernels/_C_sources.txt").decode()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = archive.read(metadata).decode().splitlines()
    modules = {n.split("/")[-1].split(".")[0] for n in names if n.endswith(".so")}
    assert modules == ({"_C", "_C_avx2"} if platform.machine() == "x86_64" else {"_C"}), names
    assert f"sources {_build.sources_digest()}" in record.splitlines()
    release = torch.__version__.split("+")[0]
    assert f"Requires-Dist: torch=={release}" in requires


def test_an_installed_wheel_runs_the_prebuilt_kernels_without_a_compiler(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    site = Path(purelib)
    # torch and lstmlab's other dependencies from this environment: a plain path line, so the
    # .pth files there (this environment's editable lstmlab) are not run.
    (site / "dependencies.pth").write_text(str(Path(torch.__file__).resolve().parent.parent))
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps"]
        + ["--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, (installed.stdout + installed.stderr)[-3000:]

    env = {k: v for k, v in os.environ.items() if k not in {"CC", "CXX", "PYTHONPATH"}}
    env["PATH"] = str(venv / "bin")
    assert shutil.which("c++", path=env["PATH"]) is None
    avx2 = torch.backends.cpu.get_cpu_capability() in {"AVX2", "AVX512"}
    best = "lstmlab.kernels._C_avx2" if avx2 else "lstmlab.kernels._C"
    # This CPU's best module, then the portable one as torch's lowest capability asks.
    for extra, expected in [({}, best), ({"ATEN_CPU_CAPABILITY": "default"}, "lstmlab.kernels._C")]:
        build_dir = tmp_path / f"build-dir-{len(extra)}"
        build_dir.mkdir()
        done = subprocess.run(
            [str(python), "-c", CHECK, str(site), expected],
            cwd=tmp_path,
            env={**env, **extra, "LSTMLAB_BUILD_DIR": str(build_dir)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        assert "compiling" not in done.stderr and "unavailable" not in done.stderr, done.stderr
        assert list(build_dir.iterdir()) == []


def _record(tmp_path: Path, sources: str, torch_release: str) -> Path:
    record = tmp_path / "_C_sources.txt"
    record.write_text(f"sources {sources}\ntorch {torch_release}\n")
    return record


@pytest.fixture
def fake_prebuilt(monkeypatch: pytest.MonkeyPatch) -> dict[str, ModuleType]:
    """Stand-ins for the prebuilt modules, returned by whoever imports those names; a name
    removed from the dict fails to import."""
    modules = {name: ModuleType(name) for name in (_build._PREBUILT, _build._PREBUILT_AVX2)}
    real = _build.importlib.import_module

    def load(name: str, *args: object) -> ModuleType:
        if name in (_build._PREBUILT, _build._PREBUILT_AVX2):
            if name not in modules:
                raise ImportError(name)
            return modules[name]
        return real(name, *args)

    monkeypatch.setattr(_build.importlib, "import_module", load)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    return modules


def test_a_prebuilt_module_is_used_only_for_the_sources_and_torch_it_was_built_from(
    tmp_path, monkeypatch, fake_prebuilt
):
    release = torch.__version__.split("+")[0]
    monkeypatch.setattr(_build, "_RECORD", _record(tmp_path, _build.sources_digest(), release))
    assert _build._prebuilt() is fake_prebuilt[_build._PREBUILT_AVX2]
    monkeypatch.setattr(_build, "_RECORD", _record(tmp_path, "0" * 64, release))
    assert _build._prebuilt() is None  # the sources beside it changed: stale
    monkeypatch.setattr(_build, "_RECORD", _record(tmp_path, _build.sources_digest(), "0.0.1"))
    assert _build._prebuilt() is None  # built against another torch
    monkeypatch.setattr(_build, "_RECORD", tmp_path / "missing.txt")
    assert _build._prebuilt() is None  # nothing was compiled at install time


def test_the_avx2_module_is_chosen_only_where_torch_reports_avx2(
    tmp_path, monkeypatch, fake_prebuilt
):
    release = torch.__version__.split("+")[0]
    monkeypatch.setattr(_build, "_RECORD", _record(tmp_path, _build.sources_digest(), release))
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert _build._prebuilt() is fake_prebuilt[_build._PREBUILT_AVX2]
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "DEFAULT")
    assert _build._prebuilt() is fake_prebuilt[_build._PREBUILT]
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    del fake_prebuilt[_build._PREBUILT_AVX2]  # a wheel built for another architecture
    assert _build._prebuilt() is fake_prebuilt[_build._PREBUILT]


def test_a_stale_prebuilt_module_falls_back_to_the_compiled_at_first_use_one(
    tmp_path, monkeypatch, fake_prebuilt
):
    release = torch.__version__.split("+")[0]
    monkeypatch.setattr(_build, "_RECORD", _record(tmp_path, "0" * 64, release))
    monkeypatch.setenv("LSTMLAB_BUILD_DIR", str(tmp_path / "cache"))
    built = ModuleType("built-at-first-use")
    monkeypatch.setattr("torch.utils.cpp_extension.load", lambda **kw: built)
    kernels = _build.extension.__wrapped__()
    assert kernels is not None and kernels._module is built
