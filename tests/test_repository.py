"""The repository speaks to its users: a short front page, and no tracked file that tells the
history of its making (stages, tracker numbers, "was X" columns). Changes go in CHANGELOG.md."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Built from pieces so that this file does not match itself.
HISTORY = re.compile(
    "|".join(
        [
            r"\bsess" + r"ion\s*\d",
            r"\bsess" + r"ion-\d",
            r"\biss" + r"ue\s*#?\d",
            r"\(w" + r"as [0-9.x-]+",
            r"\bw" + r"as [0-9.]+x\b",
            r"fused s" + r"ince",
        ]
    ),
    re.IGNORECASE,
)
TEXT = {".py", ".md", ".txt", ".toml", ".yml", ".yaml", ".cfg", ".h", ".cpp", ".html", ".json"}


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [ROOT / line for line in out.splitlines() if Path(line).suffix in TEXT]


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; the rest belongs in docs/"


def test_no_tracked_file_tells_the_history_of_its_making():
    found = []
    for path in tracked_files():
        if path.name == "CHANGELOG.md" or not path.is_file():
            continue
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        ):
            if HISTORY.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:90]}")
    assert found == []


def test_the_history_pattern_catches_what_it_should():
    for line in [
        "since sess" + "ion 4",
        "see iss" + "ue #12",
        "0.35 (w" + "as 1.60)",
        "fused s" + "ince the last release",
    ]:
        assert HISTORY.search(line), line
    for line in [
        "a sess" + "ion of a user",
        "an iss" + "ue with shapes",
        "was computed",
        "since t=0",
    ]:
        assert not HISTORY.search(line), line
