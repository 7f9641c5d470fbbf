"""Reader benchmark: our fast readers against the reference readers and a parsing floor.

Per format, on one fixed, seeded sample of real files, every file is read in this process, one
at a time, by three readers, each timed with the garbage collector off (as `timeit` does):

* fast: `pipeline.readers.musicxml.read_musicxml` (MusicXML, MXL), `kern.read_kern`,
  `abc.read_abc` (single tunes and books), `symusic_reader.read_midi_fast` (MIDI). Imported
  lazily: a missing or broken module gives `"fast": null` and a note, never a failure;
* reference: `read_music21` (music21, its warnings silenced) or `read_midi` (miditoolkit);
* floor: what no reader can beat. MusicXML/MXL: `xml.etree` parsing the document (from the zip
  for MXL) and visiting every <note>; MIDI: symusic's load alone. Kern and ABC: none.

Reported per format and reader: ms per file (median, total), notes/s, and the ratios
reference/fast and fast/floor over the files the fast reader read itself (those it hands to
the reference, `Unsupported`, are counted and timed apart: `with_fallback` adds their reference
time). Files are read once before timing so that every reader finds them in the page cache.
Timings never fail the run: an error is counted per reader.

    python bench/readers.py            # the default sample: several minutes (music21 is slow)
    python bench/readers.py --quick    # a few files per format: about a minute

"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import json
import os
import platform
import random
import re
import statistics
import sys
import time
import warnings
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("GNM_DATA_ROOT", REPO.parent / "shared" / "data"))
DEFAULT_OUT = REPO / "bench" / "results" / "readers.json"
# format -> (fast reader "module:function", default sample size, quick sample size)
FORMATS: dict[str, tuple[str, int, int]] = {
    "musicxml": ("pipeline.readers.musicxml:read_musicxml", 75, 6),
    "mxl": ("pipeline.readers.musicxml:read_musicxml", 75, 6),
    "kern": ("pipeline.readers.kern:read_kern", 60, 5),
    "abc": ("pipeline.readers.abc:read_abc", 100, 8),
    "abc_book": ("pipeline.readers.abc:read_abc", 4, 1),
    "midi": ("pipeline.readers.symusic_reader:read_midi_fast", 200, 20),
}
TUNE = re.compile(rb"^X:", re.MULTILINE)

Reader = Callable[[Path], Any]


# -- the sample ------------------------------------------------------------------------------


def candidates() -> dict[str, list[Path]]:
    """Every file of each format: music21's corpora for all but MIDI, POP909 for MIDI."""
    from pipeline.corpora import load_declarations

    names = sorted(p.stem for p in (REPO / "corpora").glob("m21-*.yaml"))
    pool: dict[str, list[Path]] = {name: [] for name in FORMATS}
    for decl in load_declarations(REPO / "corpora", names):
        for source in decl.files(DATA_ROOT):
            path = Path(source.path)
            suffix = path.suffix.lower()
            if suffix in (".xml", ".musicxml"):
                pool["musicxml"].append(path)
            elif suffix == ".mxl":
                pool["mxl"].append(path)
            elif suffix == ".krn":
                pool["kern"].append(path)
            elif suffix == ".abc":
                tunes = len(TUNE.findall(path.read_bytes()))
                pool["abc_book" if tunes > 1 else "abc"].append(path)
    pool["midi"] = sorted((DATA_ROOT / "pop909").glob("*/*.mid"))
    return {name: sorted(set(paths)) for name, paths in pool.items()}


def sample(
    pool: dict[str, list[Path]], sizes: dict[str, int], seed: int, quick: bool
) -> dict[str, list[Path]]:
    """A seeded sample per format (quick: ABC books from the smallest quarter, music21 is slow)."""
    rng = random.Random(seed)
    out: dict[str, list[Path]] = {}
    for name, paths in pool.items():
        if name == "abc_book" and quick:
            paths = sorted(paths, key=lambda p: p.stat().st_size)[: max(1, len(paths) // 4)]
        out[name] = sorted(rng.sample(paths, min(sizes[name], len(paths))))
    return out


# -- the readers -----------------------------------------------------------------------------


def load_fast(spec: str) -> tuple[Reader | None, str]:
    """The fast reader named `module:function`, or None and why not."""
    module_name, function = spec.split(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, function), ""
    except Exception as exc:  # a reader being written may not import yet
        return None, f"not available ({type(exc).__name__}: {str(exc)[:120]})"


def reference_for(name: str) -> Reader:
    from pipeline.readers.midi_reader import read_midi
    from pipeline.readers.music21_reader import read_music21

    return read_midi if name == "midi" else read_music21


def xml_floor(path: Path) -> int:
    """Parse a MusicXML document with xml.etree and visit every <note>; the number of notes."""
    if path.suffix.lower() == ".mxl":
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            rootfile = None
            if "META-INF/container.xml" in names:
                container = ElementTree.fromstring(archive.read("META-INF/container.xml"))
                found = container.find(".//{*}rootfile")
                rootfile = found.get("full-path") if found is not None else None
            if rootfile is None:
                rootfile = next(
                    n
                    for n in names
                    if n.endswith((".xml", ".musicxml")) and not n.startswith("META-INF")
                )
            root = ElementTree.fromstring(archive.read(rootfile))
    else:
        root = ElementTree.parse(path).getroot()
    return sum(1 for _ in root.iter("note"))


def midi_floor(path: Path) -> int:
    """symusic's load alone; the number of notes."""
    import symusic

    score: Any = symusic.Score(str(path), ttype="tick")
    return int(score.note_num())


def floor_for(name: str) -> Reader | None:
    if name in ("musicxml", "mxl"):
        return xml_floor
    if name == "midi":
        return midi_floor
    return None


def timed(reader: Reader, path: Path) -> tuple[float, str, int]:
    """(seconds, outcome, notes): outcome is ok, unsupported or an error class name."""
    from pipeline.errors import Unsupported
    from pipeline.readers.common import ItemFailure

    gc.collect()
    gc.disable()
    started = time.perf_counter()
    try:
        result = reader(path)
    except Unsupported:
        return time.perf_counter() - started, "unsupported", 0
    except Exception as exc:  # a reader's failure is a figure, not a crash
        return time.perf_counter() - started, type(exc).__name__, 0
    finally:
        elapsed = time.perf_counter() - started
        gc.enable()
    if isinstance(result, int):
        return elapsed, "ok", result
    notes = sum(len(s.notes) for s in result if not isinstance(s, ItemFailure))
    return elapsed, "ok", notes


# -- figures ---------------------------------------------------------------------------------


def summary(rows: list[tuple[float, str, int]]) -> dict[str, Any]:
    """ms per file (median, total), notes/s and outcome counts of one reader on some files."""
    seconds = [r[0] for r in rows]
    notes = sum(r[2] for r in rows)
    outcomes: dict[str, int] = {}
    for r in rows:
        outcomes[r[1]] = outcomes.get(r[1], 0) + 1
    total = sum(seconds)
    return {
        "files": len(rows),
        "median_ms": round(1000 * statistics.median(seconds), 3) if rows else None,
        "total_ms": round(1000 * total, 2),
        "notes": notes,
        "notes_per_s": round(notes / total) if total > 0 else None,
        "outcomes": outcomes,
    }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b > 0 else None


def bench_format(name: str, files: list[Path]) -> dict[str, Any]:
    """Time every reader on every file of one format; the figures."""
    spec = FORMATS[name][0]
    fast, note = load_fast(spec)
    reference, floor = reference_for(name), floor_for(name)
    per_file: list[dict[str, Any]] = []
    for path in files:
        path.read_bytes()  # into the page cache for every reader alike
        row: dict[str, Any] = {"file": str(path)}
        if fast is not None:
            row["fast"] = timed(fast, path)
        row["reference"] = timed(reference, path)
        if floor is not None:
            row["floor"] = timed(floor, path)
        per_file.append(row)
    out: dict[str, Any] = {"files": len(files), "fast_reader": spec.replace(":", "."), "fast": None}
    out["reference"] = summary([r["reference"] for r in per_file])
    out["floor"] = summary([r["floor"] for r in per_file]) if floor is not None else None
    if fast is None:
        out["note"] = note
        return out
    read = [r for r in per_file if r["fast"][1] == "ok"]
    out["fast"] = summary([r["fast"] for r in per_file])
    out["fast_on_its_files"] = summary([r["fast"] for r in read])
    ref_same = sum(r["reference"][0] for r in read)
    fast_same = sum(r["fast"][0] for r in read)
    fallback_ref = sum(r["reference"][0] for r in per_file if r["fast"][1] == "unsupported")
    medians = [r["reference"][0] / r["fast"][0] for r in read if r["fast"][0] > 0]
    out["ratios"] = {
        "files_compared": len(read),
        "reference_over_fast": ratio(ref_same, fast_same),
        "median_per_file_reference_over_fast": round(statistics.median(medians), 2)
        if medians
        else None,
        "reference_over_fast_with_fallback": ratio(
            sum(r["reference"][0] for r in per_file),
            sum(r["fast"][0] for r in per_file) + fallback_ref,
        ),
        "fast_over_floor": ratio(fast_same, sum(r["floor"][0] for r in read)) if floor else None,
    }
    slowest = sorted(read, key=lambda r: r["fast"][0], reverse=True)[:3]
    out["slowest_fast"] = [
        {"file": r["file"], "ms": round(1000 * r["fast"][0], 2)} for r in slowest
    ]
    return out


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("music21", "miditoolkit", "symusic", "numpy"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = None
    return out


def print_row(name: str, figures: dict[str, Any]) -> None:
    def cell(part: dict[str, Any] | None) -> str:
        if not part or not part["files"]:
            return f"{'-':>22}"
        return f"{part['median_ms']:>9.2f} {part['total_ms'] / 1000:>7.2f}s {part['notes_per_s'] or 0:>9,}/s"

    fast = figures.get("fast_on_its_files") if figures["fast"] else None
    ratios = figures.get("ratios") or {}
    print(
        f"{name:<9} {figures['files']:>4}  fast {cell(fast)} | ref {cell(figures['reference'])} | "
        f"floor {cell(figures['floor'])} | ref/fast {ratios.get('reference_over_fast')} "
        f"fast/floor {ratios.get('fast_over_floor')}"
        + (f"  ({figures['note']})" if figures.get("note") else "")
        + (
            f"  fell back {figures['fast']['outcomes'].get('unsupported', 0)}"
            if figures["fast"]
            else ""
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a few files per format")
    parser.add_argument("--seed", type=int, default=909)
    parser.add_argument(
        "--format", action="append", choices=sorted(FORMATS), help="repeat; default all"
    )
    for name in FORMATS:
        parser.add_argument(
            f"--n-{name.replace('_', '-')}", type=int, default=None, help=f"sample size for {name}"
        )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    warnings.simplefilter("ignore")  # music21's warnings: the reference reader records its own
    sizes = {
        name: getattr(args, f"n_{name}") or (quick if args.quick else default)
        for name, (_, default, quick) in FORMATS.items()
    }
    chosen = args.format or list(FORMATS)
    files = sample(candidates(), sizes, args.seed, args.quick)
    print(f"reader benchmark, seed {args.seed}{' (quick)' if args.quick else ''}: "
          "ms per file median / total / notes per s", flush=True)  # fmt: skip
    results: dict[str, Any] = {}
    for name in chosen:
        results[name] = bench_format(name, files[name])
        print_row(name, results[name])
    report = {
        "benchmark": "readers",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": list(os.getloadavg()),
        },
        "versions": versions(),
        "seed": args.seed,
        "quick": args.quick,
        "sample": {name: [str(p) for p in files[name]] for name in chosen},
        "formats": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
