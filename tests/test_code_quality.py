"""The code base stays ruff- and mypy-clean: checked with every test run, not only by whoever remembers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, '-m', *command], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    result = run('ruff', 'check', 'app', 'tests', 'bench', 'migrations')
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing() -> None:
    result = run('mypy', 'app', 'tests', 'bench')
    assert result.returncode == 0, result.stdout + result.stderr
