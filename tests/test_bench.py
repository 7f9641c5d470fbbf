"""The benchmark scripts run as bench/README.md says (`python bench/<name>.py`), from any folder.

Only `--help` is run: the benchmarks themselves take minutes and never fail on timing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))


def test_every_benchmark_is_listed() -> None:
    names = {p.name for p in SCRIPTS}
    assert {"build.py", "fuzz.py", "readers.py", "tokenizer.py"} <= names
    assert "pipeline.py" not in names  # would shadow the `pipeline` package for the others
    documented = (BENCH / "README.md").read_text()
    assert all(f"`{name}`" in documented for name in names), "document every script"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_answers_help(script: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        cwd=tmp_path,  # not the repository: the script must find the packages itself
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
