"""Fuzz benchmark: mutated real files and crafted hostile inputs through the ingest parser.

Seeds: files of every format family from music21's corpus and ../shared/data (MIDI from POP909
and ASAP, MusicXML, kern, ABC). Each seed is mutated `--mutants` times (truncation, bit flips,
header corruption; seeded), and every crafted hostile file of tests/hostile.py is added. Each case
is parsed exactly as ingest does (forked child, per-item time and memory limits). Prints and
writes the outcomes by reason, the slowest cases and the crash count (expected: 0).

    python bench/fuzz.py --mutants 20          # a few minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.executor import Limits, run_isolated  # noqa: E402
from pipeline.readers.common import ItemFailure  # noqa: E402
from pipeline.stages.ingest import ParseJob, parse_job  # noqa: E402
from tests.hostile import HOSTILE, mutate  # noqa: E402

M21 = ["bach/bwv66.6.mxl", "bach/bwv277.krn", "ciconia/quod_jactatur.xml", "mozart/k155/movement2.mxl",
       "airdsAirs/book1.abc", "beethoven/opus18no1/movement1.krn"]  # fmt: skip


def seeds(data_root: Path) -> list[Path]:
    from music21 import corpus

    out = [Path(corpus.getWork(name)) for name in M21]
    for pattern in (
        "pop909/00*/00*.mid",
        "asap/**/*.mid",
        "asap/**/*.musicxml",
        "openewld/**/*.mxl",
        "nottingham/**/*.abc",
    ):
        out += sorted(data_root.glob(pattern))[:2]
    return out


def outcome(path: Path, limits: Limits) -> tuple[str, float]:
    started = time.monotonic()
    result = run_isolated(parse_job, ParseJob(str(path), False, None), limits)
    seconds = time.monotonic() - started
    if not result.ok:
        return str(result.reason), seconds
    failures = sorted({x.reason for x in result.value or [] if isinstance(x, ItemFailure)})
    return ("parsed" if not failures else f"items:{failures[0]}"), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mutants", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--memory-mb", type=int, default=2048)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "fuzz.json"))
    args = parser.parse_args()
    limits = Limits(args.timeout, args.memory_mb)
    data_root = Path(os.environ.get("GNM_DATA_ROOT", REPO.parent / "shared" / "data"))
    outcomes: Counter[str] = Counter()
    slowest: list[tuple[float, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="gnm-fuzz-") as tmp:
        folder = Path(tmp)
        cases: list[tuple[str, Path]] = []
        for seed in seeds(data_root):
            data = seed.read_bytes()
            for k in range(args.mutants):
                path = folder / f"{k}-{seed.name}"
                path.write_bytes(mutate(data, k))
                cases.append((f"mutant {k} of {seed.name}", path))
        for name, make in HOSTILE.items():
            cases.append((name, make(folder)))
        started = time.monotonic()
        for label, path in cases:
            reason, seconds = outcome(path, limits)
            outcomes[reason] += 1
            slowest.append((seconds, label, reason))
            if label in HOSTILE:
                print(f"  {label:<28} {reason:<20} {seconds:6.1f} s")
        wall = time.monotonic() - started
    slowest.sort(reverse=True)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "command": " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "limits": {"timeout_s": args.timeout, "memory_mb": args.memory_mb},
        "cases": sum(outcomes.values()), "crashes": outcomes.get("crash", 0), "wall_s": round(wall, 1),
        "outcomes": dict(outcomes.most_common()),
        "slowest": [{"case": label, "reason": reason, "seconds": round(s, 2)} for s, label, reason in slowest[:10]],
    }  # fmt: skip
    print(f"{result['cases']} cases in {result['wall_s']} s, {result['crashes']} crashes")
    for reason, n in outcomes.most_common():
        print(f"  {reason:<24} {n}")
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
