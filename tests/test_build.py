"""Building the kernels: a build killed mid-way never makes a later process wait, the first build
says so, and each torch installation gets its own build folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from lstmlab.kernels import _build

LOAD = "from lstmlab.kernels._build import extension; assert extension() is not None"


def test_a_lock_left_by_a_killed_build_is_cleared(tmp_path):
    built = _build._build_dir()
    assert _build.extension() is not None and (built / f"{_build._NAME}.so").exists()
    copy = tmp_path / built.name
    shutil.copytree(built, copy)
    (copy / "lock").write_text("")  # what torch leaves when a build is killed
    env = {**os.environ, "LSTMLAB_BUILD_DIR": str(tmp_path)}
    # torch's own lock would make this wait forever; the timeout turns that into a failure.
    done = subprocess.run([sys.executable, "-c", LOAD], env=env, timeout=300, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert not (copy / "lock").exists()


def test_the_first_build_says_so(tmp_path):
    fake = (
        "import torch.utils.cpp_extension as c; c.load = lambda **kw: object(); "
        "from lstmlab.kernels import _build; _build.extension(); _build.extension.cache_clear(); "
        "_build.extension()"
    )
    env = {**os.environ, "LSTMLAB_BUILD_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", fake], env=env, timeout=120, capture_output=True)
    lines = [ln for ln in done.stderr.decode().splitlines() if "compiling the fused kernels" in ln]
    assert done.returncode == 0 and len(lines) == 2, done.stderr.decode()[-2000:]


def test_each_torch_installation_gets_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMLAB_BUILD_DIR", str(tmp_path))
    here = _build._build_dir()
    monkeypatch.setattr(torch, "__file__", str(Path("/elsewhere/site-packages/torch/__init__.py")))
    assert _build._build_dir() != here
