"""Fuzz benchmark: tens of thousands of hostile inputs through the readers and the declaration loader.

Cases (tests/fuzz_cases.py): every crafted hostile input (divisions 0 or NaN, 0/0 and 3/0 meters,
backup past the bar start, huge tuplets and chords, spine explosions, SMPTE division, format 2,
gzip named .mid, YAML alias bombs, catastrophic regexes, ...) then seeded mutants of real files of
six families (MusicXML, MXL, kern, ABC, MIDI, corpus declarations). Each case is read as ingest
reads it (the fast readers, falling back on the reference ones), in batches through the same
isolated executor, under ingest's time and memory limits, in a folder of its own.

Prints and writes (bench/results/fuzz.json) the outcomes by family and reason, the cases that are
bugs (`crash`, `unhandled:<Type>`), the hangs (a case the executor failed to stop within its
limit), files written outside the case folders, the slowest cases and the peak memory.

    python bench/fuzz.py --cases 10000 --jobs 2      # about 15 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.executor import Limits, run_isolated_batch  # noqa: E402
from pipeline.stages.ingest_read import PRELOAD  # noqa: E402
from tests.fuzz_cases import Case, cases, probe, seed_files  # noqa: E402

BATCH = 25  # cases per forked child, as ingest batches files
HANG_SLACK_S = 5.0  # per case, on top of the time limit: killing a child and forking the next
_CASES: list[Case] = []  # set before the pool forks: workers index into it


def run_batch(task: tuple[list[int], Limits, str]) -> list[dict[str, Any]]:
    """Write one batch of cases into fresh folders, read them, remove the folders."""
    indices, limits, scratch = task
    folder = Path(tempfile.mkdtemp(prefix="batch-", dir=scratch))
    paths = []
    for i in indices:
        own = folder / str(i)
        own.mkdir()
        paths.append(_CASES[i].make(own))
    started = time.monotonic()
    outcomes = run_isolated_batch(probe, paths, limits)
    batch_s = time.monotonic() - started
    rows = []
    for i, outcome in zip(indices, outcomes, strict=True):
        case = _CASES[i]
        if outcome.ok and outcome.value is not None:
            reason, seconds, peak_kib = outcome.value
        else:  # the executor's: timeout, memory_limit, crash
            reason, seconds, peak_kib = str(outcome.reason), None, None
        rows.append({"case": i, "family": case.family, "label": case.label, "reason": reason,
                     "seconds": seconds, "peak_kib": peak_kib, "detail": outcome.detail})  # fmt: skip
    shutil.rmtree(folder)
    # The executor stops each case within its time limit (plus the kill and a fresh fork): a
    # batch that took longer than that for all its cases held a case it failed to stop.
    rows[0]["batch_overran"] = batch_s > len(indices) * (limits.timeout_s + HANG_SLACK_S)
    return rows


def snapshot(root: Path, work: Path) -> dict[str, Any]:
    """What a stray write would change: the repository's status, the home folder's entries and
    everything in the folders around the work folder (`../../x` from a case lands there)."""
    status = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=REPO,
                            capture_output=True, text=True, check=False).stdout  # fmt: skip
    around = sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_relative_to(work))
    home = sorted(p.name for p in Path.home().iterdir())
    return {"repo": status.splitlines(), "around": around, "home": home}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="How many cases (default 10000).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the mutants (default 0).")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="Worker processes.")
    parser.add_argument("--timeout", type=float, default=30, help="Seconds per case (default 30).")
    parser.add_argument("--memory-mb", type=int, default=2048, help="Per case (default 2048).")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "fuzz.json"))
    args = parser.parse_args()
    limits = Limits(args.timeout, args.memory_mb)
    data_root = Path(os.environ.get("GNM_DATA_ROOT", REPO.parent / "shared" / "data"))
    for name in PRELOAD:  # imported once, inherited by every worker and child
        __import__(name)
    root = Path(tempfile.mkdtemp(prefix="gnm-fuzz-"))
    scratch = root / "a" / "b" / "c" / "work"  # relative escapes land in root, and are seen
    scratch.mkdir(parents=True)
    os.chdir(scratch)  # a reader writing to its working folder writes here, and is seen
    seeds = seed_files(data_root, root / "seeds")
    _CASES.extend(cases(seeds, args.cases, args.seed))
    print(f"{len(_CASES)} cases; seeds: " + ", ".join(f"{f} {len(p)}" for f, p in seeds.items()))
    before = snapshot(root, scratch)
    batches = [list(range(i, min(i + BATCH, len(_CASES)))) for i in range(0, len(_CASES), BATCH)]
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        for done in pool.imap_unordered(run_batch, [(b, limits, str(scratch)) for b in batches]):
            rows.extend(done)
            if len(rows) % 1000 < BATCH:
                print(f"  {len(rows)}/{len(_CASES)} cases, {time.monotonic() - started:.0f} s",
                      flush=True)  # fmt: skip
    wall = time.monotonic() - started
    after = snapshot(root, scratch)
    leftovers = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*"))
    os.chdir(REPO)
    shutil.rmtree(root)
    result = summarise(rows, args, limits, wall, before, after, leftovers)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


def summarise(rows: list[dict[str, Any]], args: argparse.Namespace, limits: Limits, wall: float,
              before: dict[str, Any], after: dict[str, Any], leftovers: list[str]) -> dict[str, Any]:  # fmt: skip
    """Print the figures and return them as JSON."""
    by_family: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        by_family[row["family"]][row["reason"]] += 1
    bugs = [r for r in rows if r["reason"] == "crash" or r["reason"].startswith("unhandled:")]
    # A hang is a batch holding a case the executor did not stop within its limit (a timeout
    # is the limit working).
    hangs = [r for r in rows if r.get("batch_overran")]
    timeouts = [r for r in rows if r["reason"] == "timeout"]
    stray = {k: sorted(set(after[k]) ^ set(before[k])) for k in before}
    timed = sorted((r for r in rows if r["seconds"] is not None), key=lambda r: -r["seconds"])
    peaks = [r for r in rows if r["peak_kib"] is not None]
    peak = max(peaks, key=lambda r: r["peak_kib"]) if peaks else None
    total: Counter[str] = Counter()
    for counts in by_family.values():
        total.update(counts)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/fuzz.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "limits": {"timeout_s": limits.timeout_s, "memory_mb": limits.memory_mb},
        "cases": len(rows), "jobs": args.jobs, "seed": args.seed, "wall_s": round(wall, 1),
        "bugs": len(bugs), "crashes": sum(r["reason"] == "crash" for r in rows),
        "hangs": len(hangs), "timeouts": len(timeouts),
        "writes_outside": {k: v for k, v in stray.items() if v} or None,
        "left_in_case_folders": leftovers[:20],
        "peak_rss_mib": round(peak["peak_kib"] / 1024, 1) if peak else None,
        "peak_case": peak and f"{peak['family']}: {peak['label']}",
        "outcomes": dict(total.most_common()),
        "by_family": {f: dict(c.most_common()) for f, c in sorted(by_family.items())},
        "bug_cases": [{k: r[k] for k in ("family", "label", "reason", "detail")} for r in bugs[:50]],
        "timeout_cases": [f"{r['family']}: {r['label']}" for r in timeouts[:50]],
        "slowest": [{"case": f"{r['family']}: {r['label']}", "reason": r["reason"],
                     "seconds": round(r["seconds"], 2)} for r in timed[:15]],
    }  # fmt: skip
    print(f"{result['cases']} cases in {result['wall_s']} s ({args.jobs} jobs): {result['bugs']} bugs, "
          f"{result['hangs']} hangs, {result['timeouts']} timeouts, writes outside: "
          f"{result['writes_outside'] or 'none'}, peak RSS {result['peak_rss_mib']} MiB")  # fmt: skip
    for family, counts in result["by_family"].items():
        print(f"  {family:<12} " + ", ".join(f"{r} {n}" for r, n in counts.items()))
    for bug in result["bug_cases"][:10]:
        print(f"  BUG {bug['family']}: {bug['label']}: {bug['reason']} {bug['detail'][:120]}")
    return result


if __name__ == "__main__":
    main()
