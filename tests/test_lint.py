"""The code base passes ruff and mypy with the project's own settings (pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_finds_nothing() -> None:
    """The type checker over the product's source, with the settings in pyproject.toml."""
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_merge_conflict_markers_are_left() -> None:
    """A merge resolved in a hurry once left its markers in docs/kiosk.md: no tracked text
    file may hold a line that is one."""
    r = subprocess.run(["git", "grep", "-n", "-I", "-E", "^(<{7} |>{7} |={7}$)", "--", ".", ":!*.lock", ":!package-lock.json"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and not r.stdout, r.stdout  # git grep: 1 = nothing found
