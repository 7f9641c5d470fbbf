"""A build killed with SIGKILL at random points, then rerun, ends byte-identical to a clean build,
and no partial file is ever visible under a final name (issue 7). The builds are slow; the quick
test kills one writer of the stages' atomic writes in the middle of its work."""

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

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.ledger import write_table_atomic
from tests.helpers import make_build_root

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


def test_a_writer_killed_while_replacing_a_file_leaves_a_whole_file_under_its_name(
    tmp_path: Path,
) -> None:
    target = tmp_path / "data/default/tokenize/tokens.parquet"
    pid = os.fork()
    if pid == 0:  # the child rewrites the file, each time with other rows, until it is killed
        try:
            for n in range(1_000_000):
                write_table_atomic(pa.table({"n": list(range(n % 7, 20_000))}), target)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 30
    while not target.exists() and time.monotonic() < deadline:  # a loaded machine forks slowly
        time.sleep(0.01)
    rng = random.Random(11)
    for _ in range(20):  # look at it, whole every time, while the child writes
        time.sleep(rng.uniform(0.0, 0.02))
        pq.read_metadata(target)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert pq.read_table(target).num_rows > 19_990  # whole: one of the child's tables
    finals = [p.name for p in target.parent.iterdir() if not p.name.startswith(".")]
    assert finals == ["tokens.parquet"]  # what the kill left half written has a temporary name


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


def _train(shards: Path, out: Path, resume: bool) -> subprocess.Popen[bytes]:
    args = ["train", "pretrain", "--shards", str(shards), "--preset", "tiny", "--steps", "120",
            "--batch-size", "4", "--eval-every", "10", "--checkpoint-every", "10", "--device", "cpu",
            "--out", str(out)]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "gnm_model.cli", *args, *(["--resume"] if resume else [])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _losses(run: Path) -> dict[int, float]:
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


@pytest.mark.slow
def test_training_killed_then_resumed_loses_nothing_and_never_leaves_a_corrupt_latest(
    quick_shards: Path, tmp_path: Path
) -> None:
    from gnm_model import checkpoint as ckpt

    clean = _train(quick_shards, tmp_path / "clean", resume=False)
    assert clean.wait(timeout=600) == 0
    run = tmp_path / "killed"
    rng = random.Random(3)
    steps_at_kill = []
    for trial in range(4):
        proc = _train(quick_shards, run, resume=trial > 0)
        # Wait for this run's next checkpoint, then kill somewhere before the one after it.
        target = 20 * (trial + 1)
        while proc.poll() is None and not (
            (run / "latest.json").is_file()
            and json.loads((run / "latest.json").read_text())["step"] >= target
        ):
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if (run / "latest.json").is_file():
            steps_at_kill.append(ckpt.load(ckpt.latest(run)).step)  # loads: hashes match
    assert steps_at_kill and steps_at_kill == sorted(steps_at_kill)
    assert steps_at_kill[-1] < 120, steps_at_kill  # every kill landed mid-run
    final = _train(quick_shards, run, resume=True)
    assert final.wait(timeout=600) == 0
    assert _losses(run) == _losses(tmp_path / "clean")
    assert ckpt.load(ckpt.latest(run)).step == 120
