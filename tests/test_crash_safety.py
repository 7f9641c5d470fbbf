"""A build killed with SIGKILL at random points, then rerun, ends byte-identical to a clean build,
and no partial file is ever visible under a final name (issue 7)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import make_build_root

FINAL = ("data/default", "reports/default")


def _complete(path: Path) -> bool:
    """Whether a file under a final name is whole (its format's own check)."""
    if path.suffix == ".parquet":
        pq.read_metadata(path)
        return True
    if path.suffix == ".json":
        json.loads(path.read_text())
        return True
    if path.suffix == ".png":
        return path.read_bytes().endswith(b"IEND\xaeB`\x82")
    return True


def _final_files(root: Path) -> list[Path]:
    return [
        p
        for folder in FINAL
        for p in (root / folder).rglob("*")
        if p.is_file() and not p.name.startswith(".")
    ]


def _build(root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gnm_model.cli", "data", "build", "--no-dvc", "--root", str(root)],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
    )  # fmt: skip


STAGE_DIRS = ["data/default/ingest", "data/default/dedupe", "data/default/verify", "data/default/meter",
              "data/default/quantize", "data/default/tokenize", "data/default/shards", "reports/default"]  # fmt: skip


def _check_visible(root: Path) -> None:
    for path in _final_files(root):
        with contextlib.suppress(FileNotFoundError):  # replaced between listing and reading
            assert _complete(path), path


@pytest.mark.slow
def test_builds_killed_at_random_points_then_rerun_match_a_clean_build(
    tiny_build: Path, tmp_path: Path
) -> None:
    root = make_build_root(tmp_path / "killed")
    rng = random.Random(7)
    # Kill as soon as each stage has written in this run (plus a random delay), then twice at random times.
    plan: list[str | None] = [*STAGE_DIRS, None, None]
    killed = []
    for target in plan:
        started = time.time_ns()
        proc = _build(root)
        deadline = time.monotonic() + (rng.uniform(0.5, 12.0) if target is None else 120)
        while time.monotonic() < deadline and proc.poll() is None:
            _check_visible(root)
            if target is not None and any(
                p.stat().st_mtime_ns >= started for p in (root / target).rglob("*") if p.is_file()
            ):
                time.sleep(rng.uniform(0, 0.3))
                break
            time.sleep(0.02)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            killed.append(target)
        proc.wait()
        _check_visible(root)
    assert len(killed) >= 8, killed  # the kills landed in (at least) eight different places
    done = _build(root)
    assert done.wait(timeout=600) == 0
    for folder in ("data/default/shards", "reports/default"):
        clean = {
            p.relative_to(tiny_build): p.read_bytes()
            for p in (tiny_build / folder).rglob("*")
            if p.is_file()
        }
        again = {
            p.relative_to(root): p.read_bytes() for p in (root / folder).rglob("*") if p.is_file()
        }
        assert clean.keys() == again.keys(), folder
        assert [k for k in clean if clean[k] != again[k]] == [], folder
