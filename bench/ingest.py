"""Ingest benchmark: wall time, items/s and peak memory of the ingest stage.

Scenarios, each in a fresh Python process (so that memory figures are its own), all with
their own empty cache unless said otherwise:

1. cold, 1 worker, every selected corpus;
2. cold, 2 workers, every corpus but the last ("before adding a corpus");
3. 2 workers on that cache with the last corpus added: only its files should be parsed;
4. warm: the same run again, everything from the cache.

The 2-worker cold figure for the whole selection is run 2 + run 3; the speed-up is run 1 over
that. Default selection: the default profile (every `m21-*` declaration in corpora/).

    python bench/ingest.py                       # default profile (about 40 minutes on 2 cores)
    python bench/ingest.py --corpus m21-bach --corpus m21-mozart --corpus m21-chopin
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def single(corpora: list[str], workers: int, cache: str) -> dict[str, Any]:
    """One ingest run in this process; figures as a dict."""
    from pipeline.corpora import load_declarations
    from pipeline.stages import ingest

    decls = load_declarations(REPO / "corpora", corpora)
    data_root = Path(os.environ.get("GNM_DATA_ROOT", REPO.parent / "shared" / "data"))
    files = [f for d in decls for f in d.files(data_root)]
    started = time.perf_counter()
    result = ingest.run(
        files, {d.name: d for d in decls}, ingest.IngestConfig(), Path(cache), workers=workers
    )
    items = len(result.decisions())  # reads every outcome back, as writing the output does
    wall = time.perf_counter() - started
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "corpora": corpora,
        "workers": workers,
        "files": len(files),
        "items": items,
        "parsed": result.parsed,
        "from_cache": result.cached,
        "wall_s": round(wall, 2),
        "items_per_s": round(items / wall, 2),
        "peak_rss_main_mb": round(self_rss / 1024, 1),
        "peak_rss_largest_child_mb": round(child_rss / 1024, 1),
    }


def run_child(corpora: list[str], workers: int, cache: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--single", "--workers", str(workers), "--cache", cache]
    for c in corpora:
        cmd += ["--corpus", c]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO)
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"  {len(corpora)} corpora, {workers} worker(s): {figures['items']} items in {figures['wall_s']} s "
        f"({figures['items_per_s']} items/s), parsed {figures['parsed']}, cached {figures['from_cache']}, "
        f"peak RSS main {figures['peak_rss_main_mb']} MB / largest child {figures['peak_rss_largest_child_mb']} MB",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus", action="append", default=[], help="corpus to include (repeat); default: m21-*"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ingest.json")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--cache", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(single(args.corpus, args.workers, args.cache)))
        return

    corpora = args.corpus or sorted(p.stem for p in (REPO / "corpora").glob("m21-*.yaml"))
    if len(corpora) < 2:
        parser.error("need at least two corpora (the last one is 'added')")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"ingest benchmark on {', '.join(corpora)}", flush=True)
        one = run_child(corpora, 1, f"{tmp}/c1")
        before = run_child(corpora[:-1], 2, f"{tmp}/c2")
        added = run_child(corpora, 2, f"{tmp}/c2")
        warm = run_child(corpora, 2, f"{tmp}/c2")
    two_wall = before["wall_s"] + added["wall_s"]
    added_files = added["files"] - before["files"]
    summary = {
        "speedup_2_workers": round(one["wall_s"] / two_wall, 2),
        "warm_over_cold": round(warm["wall_s"] / two_wall, 4),
        "added_corpus": corpora[-1],
        "added_corpus_files": added_files,
        "parsed_when_adding": added["parsed"],
        "only_new_files_parsed": added["parsed"] == added_files,
        "peak_rss_mb": max(r["peak_rss_main_mb"] for r in (one, before, added, warm)),
        "peak_rss_child_mb": max(
            r["peak_rss_largest_child_mb"] for r in (one, before, added, warm)
        ),
    }
    print(
        f"speed-up with 2 workers: {summary['speedup_2_workers']}x (target >= 1.7); "
        f"warm run {100 * summary['warm_over_cold']:.1f}% of cold (target <= 5%); adding {corpora[-1]} parsed "
        f"{added['parsed']} of its {added_files} files"
    )
    report = {
        "benchmark": "ingest",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "corpora": corpora,
        "runs": {
            "cold_1_worker": one,
            "cold_2_workers_before_adding": before,
            "adding_one_corpus": added,
            "warm": warm,
        },
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
