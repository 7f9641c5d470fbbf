"""Benchmark: GnM's Extended REMI tokenizer against MidiTok's REMI, on POP909 and Bach chorales.

Measures, per dataset, on scores that are already loaded:

* load (parse) time: our readers (miditoolkit for MIDI, music21 for MusicXML/kern) and symusic;
* prepare time (our meter normalisation + quantisation) and MidiTok's `preprocess_score`;
* encode and decode throughput (scores/s, notes/s, tokens/s) for both tokenizers;
* round-trip fidelity of both: share of scores and of notes that survive decode(encode(s));
* end to end on MIDI (POP909): file -> token ids in one timed loop per side, ours reading with
  the fast reader (symusic), applying the beat file, meter-normalising, quantising and encoding;
  MidiTok loading with symusic and encoding (its preprocessing included).

POP909 files get their beat-file meter override (`beat_midi.txt`), as the pop909 corpus
declaration does. Scores whose meters have no rule (`MeterError`) are skipped with their
reason and excluded from both sides, so that both tokenizers see the same files. MidiTok cannot
read MusicXML: every chorale is written to MIDI with `pipeline.writers.write_midi` (from our raw,
unquantised read) and MidiTok reads that MIDI; our side reads the MusicXML/kern file itself.

MidiTok is a bench-only dependency (`pip install miditok`); without it the MidiTok half is
skipped (`"miditok": null` in the JSON). Timings use `time.perf_counter`, with the garbage
collector off during each timed loop (as `timeit` does); every loop runs `--repeat` times (at
least 2) and the best run is kept. Compare figures only within one run (the ratios).

    python bench/tokenizer.py                      # writes bench/results/tokenizer.json
    python bench/tokenizer.py --limit-pop909 100 --limit-bach 50 --repeat 3
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from pipeline.errors import GnmError, MeterError
from pipeline.io.atomic import write_text_atomic
from pipeline.music.prepare import prepare
from pipeline.music.quantize import QuantizeStats
from pipeline.readers import read_scores
from pipeline.readers.beats import apply_beat_file
from pipeline.score import Score
from pipeline.tokenizer import Tokenizer
from pipeline.writers import write_midi

try:  # bench-only dependency: never a project dependency
    import miditok
    import symusic
except ImportError:  # pragma: no cover - depends on the bench environment
    miditok = None
    symusic = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
POP909_DIR = ROOT.parent / "shared" / "data" / "pop909"
DEFAULT_OUT = ROOT / "bench" / "results" / "tokenizer.json"
BACH_SUFFIXES = (".mxl", ".xml", ".krn")

# MidiTok's REMI set up as close to ours as it allows: 12 positions per beat, durations up to
# 8 beats, full pitch range, no velocity/tempo tokens (ours has one tempo token per score; its
# velocities are not encoded), time signatures on, and every meter that occurs in the two data
# sets allowed. MidiTok's beat is the time signature's denominator, so a /8 meter gets 24 and a
# /2 meter 6 positions per quarter (ours is 12 per quarter everywhere). use_programs is off
# (MidiTok's default): one token sequence per track, each repeating the Bar/TimeSig tokens,
# where ours merges all parts into one stream; notes/s is therefore the fairer figure.
MIDITOK_CONFIG: dict[str, Any] = {
    "pitch_range": (0, 127),
    "beat_res": {(0, 8): 12},
    "use_velocities": False,
    "use_tempos": False,
    "use_time_signatures": True,
    "use_programs": False,
    "time_signature_range": {2: [2, 3, 4], 4: [1, 2, 3, 4, 5, 6, 7, 8], 8: [3, 6, 9, 12]},
}

OURS_FIDELITY_COUNTS = (
    "scores",
    "scores_exact",
    "scores_meters_exact",
    "notes_expected",
    "notes_preserved",
    "errors",
    "unison_merged",
    "durations_clipped",
)
MIDITOK_FIDELITY_COUNTS = (
    "scores",
    "scores_exact_vs_preprocessed",
    "scores_exact_vs_original",
    "errors",
    "notes_preprocessed",
    "notes_preserved_vs_preprocessed",
    "notes_original",
    "notes_preserved_vs_original",
    "time_signature_changes",
    "time_signature_changes_lost_or_changed",
    "scores_time_signatures_exact",
)

T = TypeVar("T")
Key = tuple[Fraction, int, Fraction]


# -- timing ------------------------------------------------------------------------------------


def timed(fn: Callable[[], T], repeat: int) -> tuple[float, list[float], T]:
    """Run `fn` `repeat` times with the GC off; (best seconds, all runs, last result)."""
    runs: list[float] = []
    result: T | None = None
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            result = fn()
            runs.append(time.perf_counter() - start)
        finally:
            gc.enable()
    assert result is not None
    return min(runs), runs, result


def throughput(
    seconds: float, scores: int, notes: int, tokens: int, runs: Sequence[float]
) -> dict[str, Any]:
    """A timing record: best seconds, each run, and scores/notes/tokens per second."""

    def rate(count: int, digits: int) -> float | None:
        return round(count / seconds, digits) if seconds > 0 else None

    return {
        "seconds": round(seconds, 6),
        "runs_s": [round(r, 6) for r in runs],
        "scores_per_s": rate(scores, 3),
        "notes_per_s": rate(notes, 1),
        "tokens_per_s": rate(tokens, 1),
    }


def load_each(
    paths: Sequence[Path], load: Callable[[Path], T], repeat: int
) -> tuple[list[T | Exception], list[float]]:
    """Load every path `repeat` times; per file the result (or exception) and the best seconds."""
    results: list[T | Exception] = []
    best = [float("inf")] * len(paths)
    for r in range(repeat):
        gc.collect()
        gc.disable()
        try:
            for i, path in enumerate(paths):
                start = time.perf_counter()
                try:
                    value: T | Exception = load(path)
                except Exception as exc:  # a parse failure is a result here, counted by the caller
                    value = exc
                best[i] = min(best[i], time.perf_counter() - start)
                if r == 0:
                    results.append(value)
        finally:
            gc.enable()
    return results, best


def load_record(seconds: Sequence[float], notes: int) -> dict[str, Any]:
    total = sum(seconds)
    return {
        "files": len(seconds),
        "seconds": round(total, 6),
        "ms_per_file": round(1000 * total / len(seconds), 3) if seconds else None,
        "files_per_s": round(len(seconds) / total, 1) if total else None,
        "notes_per_s": round(notes / total, 1) if total else None,
    }


# -- fidelity ----------------------------------------------------------------------------------


def preserved(expected: Sequence[Key], actual: Sequence[Key]) -> int:
    """How many of `expected` (as a multiset) appear in `actual`."""
    return sum((Counter(expected) & Counter(actual)).values())


def ours_expected(prepared: Score, max_q: Fraction) -> list[Key]:
    """What our round trip must give back: distinct notes with durations clipped to the vocab."""
    return sorted({(o, p, min(d, max_q)) for o, p, d in prepared.note_keys()})


def sym_keys(score: Any) -> list[Key]:
    """(onset, pitch, duration) in quarters of every note of a symusic score, all tracks."""
    tpq = score.ticks_per_quarter
    return sorted(
        (Fraction(n.time, tpq), int(n.pitch), Fraction(n.duration, tpq))
        for track in score.tracks
        for n in track.notes
    )


def sym_note_count(score: Any) -> int:
    return sum(len(track.notes) for track in score.tracks)


def sym_time_signatures(score: Any, until: Fraction) -> list[tuple[Fraction, int, int]]:
    """Time-signature changes (quarters, n, d) up to `until`, consecutive repeats dropped."""
    tpq = score.ticks_per_quarter
    out: list[tuple[Fraction, int, int]] = []
    for ts in score.time_signatures:
        at = Fraction(ts.time, tpq)
        if at > until:
            break
        if out and out[-1][0] == at:
            out.pop()
        if not out or out[-1][1:] != (ts.numerator, ts.denominator):
            out.append((at, int(ts.numerator), int(ts.denominator)))
    return out


# -- one dataset -------------------------------------------------------------------------------


@dataclass
class Item:
    """One score kept for the comparison."""

    path: Path
    raw: Score
    prepared: Score
    stats: QuantizeStats
    midi_path: Path
    load_s: float
    sym: Any = None
    sym_load_s: float = 0.0
    ids: list[int] = field(default_factory=list)
    mt_ids: list[list[int]] = field(default_factory=list)


def run_dataset(
    name: str,
    paths: Sequence[Path],
    *,
    repeat: int,
    use_miditok: bool,
    midi_dir: Path | None,
) -> dict[str, Any]:
    """Measure one dataset; `midi_dir` set means: write our raw read to MIDI there for MidiTok."""
    print(f"\n[{name}] {len(paths)} files: loading with our readers ...", flush=True)
    tok = Tokenizer()
    max_q = Fraction(tok.vocab.max_duration, tok.vocab.resolution)
    out: dict[str, Any] = {"files": len(paths)}

    # 1. Load (ours), best of `repeat` per file.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded, load_s = load_each(paths, read_scores, repeat)
    read_errors: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    items: list[Item] = []
    for path, result, seconds in zip(paths, loaded, load_s, strict=True):
        if isinstance(result, Exception):
            read_errors[type(result).__name__] += 1
            continue
        if len(result) != 1:
            read_errors["not_one_score"] += 1
            continue
        raw = result[0]
        beats = path.parent / "beat_midi.txt"
        try:
            if name == "pop909" and beats.is_file():
                # As the pop909 corpus declaration does: the beat annotations give the meter.
                raw = apply_beat_file(raw, beats)
            prepared, stats = prepare(raw, resolution=tok.vocab.resolution)
        except MeterError as exc:
            skipped[exc.reason] += 1
            continue
        except GnmError as exc:
            skipped[type(exc).__name__] += 1
            continue
        items.append(Item(path, raw, prepared, stats, path, seconds))
    out["read_errors"] = dict(read_errors)
    out["skipped"] = dict(sorted(skipped.items()))
    print(
        f"[{name}] kept {len(items)}, skipped {sum(skipped.values())} {dict(skipped)}", flush=True
    )

    # 2. The MIDI files MidiTok reads: the same files, or our raw read written to MIDI.
    midi_load_ours: dict[str, Any] | None = None
    if midi_dir is not None:
        written: list[Item] = []
        for i, item in enumerate(items):
            target = midi_dir / f"{i:04d}_{item.path.stem}.mid"
            try:
                write_midi(item.raw, target)
            except GnmError:
                read_errors["write_midi_failed"] += 1
                continue
            item.midi_path = target
            written.append(item)
        items = written
        # Our reader on the very MIDI files MidiTok reads, for a like-for-like load figure.
        _, midi_s = load_each([it.midi_path for it in items], read_scores, repeat)
        midi_load_ours = load_record(midi_s, sum(len(it.raw.notes) for it in items))
        out["read_errors"] = dict(read_errors)
    out["sources"] = {
        "ours": "musicxml/kern via our fast readers"
        if midi_dir is not None
        else "midi via symusic (our fast reader)",
        "miditok": "midi written by pipeline.writers.write_midi from our raw read"
        if midi_dir is not None
        else "the same midi files via symusic",
    }

    # 3. MidiTok load (symusic) on the kept files.
    mt: Any = None
    if use_miditok:
        mt = miditok.REMI(miditok.TokenizerConfig(**MIDITOK_CONFIG))
        sym_loaded, sym_s = load_each(
            [it.midi_path for it in items], lambda p: symusic.Score(str(p)), repeat
        )
        loaded_ok: list[Item] = []
        for item, sym, seconds in zip(items, sym_loaded, sym_s, strict=True):
            if not isinstance(sym, Exception):
                item.sym, item.sym_load_s = sym, seconds
                loaded_ok.append(item)
        if len(loaded_ok) < len(items):
            out["miditok_load_errors"] = len(items) - len(loaded_ok)
        items = loaded_ok

    # 4. Correctness pass (not timed): encode and decode once, measure fidelity.
    ours_fid: dict[str, Any] = dict.fromkeys(OURS_FIDELITY_COUNTS, 0)
    mt_fid: dict[str, Any] = dict.fromkeys(MIDITOK_FIDELITY_COUNTS, 0)
    failures: list[dict[str, str]] = []
    common: list[Item] = []
    for item in items:
        ok = True
        expected = ours_expected(item.prepared, max_q)
        ours_fid["scores"] += 1
        ours_fid["notes_expected"] += len(expected)
        try:
            encoding = tok.encode_with_report(item.prepared)
            decoded = tok.decode(encoding.ids)
        except GnmError as exc:
            ours_fid["errors"] += 1
            failures.append({"side": "ours", "file": item.path.name, "error": str(exc)[:300]})
            ok = False
        else:
            item.ids = encoding.ids
            ours_fid["unison_merged"] += encoding.report.get("unison_merged", 0)
            ours_fid["durations_clipped"] += encoding.report.get("durations_clipped", 0)
            got = decoded.note_keys()
            ours_fid["notes_preserved"] += preserved(expected, got)
            ours_fid["scores_exact"] += got == expected
            ours_fid["scores_meters_exact"] += decoded.meters() == item.prepared.meters()
        if mt is not None:
            mt_fid["scores"] += 1
            original = sym_keys(item.sym)
            mt_fid["notes_original"] += len(original)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pre = mt.preprocess_score(item.sym)
                    seqs = mt.encode(item.sym)
                    item.mt_ids = [list(seq.ids) for seq in seqs]
                    back = mt.decode([list(ids) for ids in item.mt_ids])
            except Exception as exc:  # MidiTok raises assorted types; count and go on
                mt_fid["errors"] += 1
                failures.append(
                    {"side": "miditok", "file": item.path.name, "error": repr(exc)[:300]}
                )
                ok = False
            else:
                pre_keys, got = sym_keys(pre), sym_keys(back)
                mt_fid["notes_preprocessed"] += len(pre_keys)
                mt_fid["notes_preserved_vs_preprocessed"] += preserved(pre_keys, got)
                mt_fid["notes_preserved_vs_original"] += preserved(original, got)
                mt_fid["scores_exact_vs_preprocessed"] += got == pre_keys
                mt_fid["scores_exact_vs_original"] += got == original
                last = original[-1][0] if original else Fraction(0)
                ts_in = sym_time_signatures(item.sym, last)
                ts_out = set(sym_time_signatures(back, last))
                lost = sum(ts not in ts_out for ts in ts_in)
                mt_fid["time_signature_changes"] += len(ts_in)
                mt_fid["time_signature_changes_lost_or_changed"] += lost
                mt_fid["scores_time_signatures_exact"] += lost == 0
        if ok:
            common.append(item)
    out["compared_scores"] = len(common)
    if failures:
        out["failures"] = failures[:20]
        out["failure_count"] = len(failures)
    ours_fid["share_scores_exact"] = _share(ours_fid["scores_exact"], ours_fid["scores"])
    ours_fid["share_notes_preserved"] = _share(
        ours_fid["notes_preserved"], ours_fid["notes_expected"]
    )
    notes_in = sum(it.stats.notes for it in items)
    moved = sum(it.stats.notes_moved for it in items)
    ours_fid["share_notes_moved_by_quantise"] = _share(moved, notes_in)

    # 5. Timed loops (ours) on the scores both sides handled.
    print(f"[{name}] timing ours on {len(common)} scores ...", flush=True)
    n_scores = len(common)
    ours_notes = sum(len(it.prepared.notes) for it in common)
    ours_tokens = sum(len(it.ids) for it in common)
    raws = [it.raw for it in common]
    prepared_scores = [it.prepared for it in common]
    id_lists = [it.ids for it in common]
    prep_best, prep_runs, _ = timed(
        lambda: [prepare(s, resolution=tok.vocab.resolution) for s in raws], repeat
    )
    enc_best, enc_runs, _ = timed(lambda: [tok.encode(s) for s in prepared_scores], repeat)
    dec_best, dec_runs, _ = timed(lambda: [tok.decode(ids) for ids in id_lists], repeat)
    ours: dict[str, Any] = {
        "scores": n_scores,
        "notes": ours_notes,
        "tokens": ours_tokens,
        "tokens_per_note": round(ours_tokens / ours_notes, 3) if ours_notes else None,
        "vocab_size": len(tok.vocab),
        "load": load_record([it.load_s for it in common], sum(len(it.raw.notes) for it in common)),
        "load_all_files": load_record(load_s, 0) | {"notes_per_s": None},
        "prepare": throughput(prep_best, n_scores, ours_notes, ours_tokens, prep_runs),
        "encode": throughput(enc_best, n_scores, ours_notes, ours_tokens, enc_runs),
        "prepare_plus_encode": throughput(
            prep_best + enc_best, n_scores, ours_notes, ours_tokens, []
        ),
        "decode": throughput(dec_best, n_scores, ours_notes, ours_tokens, dec_runs),
        "fidelity": ours_fid,
    }
    if midi_load_ours is not None:
        ours["load_from_written_midi"] = midi_load_ours
    out["ours"] = ours

    # 6. Timed loops (MidiTok).
    if mt is None:
        out["miditok"] = None
        return out
    print(f"[{name}] timing MidiTok on {len(common)} scores ...", flush=True)
    syms = [it.sym for it in common]
    mt_id_lists = [it.mt_ids for it in common]
    mt_notes = sum(sym_note_count(s) for s in syms)
    mt_tokens = sum(len(ids) for ids_per_track in mt_id_lists for ids in ids_per_track)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pre_best, pre_runs, pres = timed(lambda: [mt.preprocess_score(s) for s in syms], repeat)
        full_best, full_runs, _ = timed(lambda: [mt.encode(s) for s in syms], repeat)
        bare_best, bare_runs, _ = timed(
            lambda: [mt.encode(p, no_preprocess_score=True) for p in pres], repeat
        )
        # MidiTok's decode rewrites a list of TokSequence in place: decode from ids (as a model
        # would hand them over), copying the outer list each time.
        mdec_best, mdec_runs, _ = timed(
            lambda: [mt.decode(list(ids)) for ids in mt_id_lists], repeat
        )
    mt_fid["share_scores_exact_vs_preprocessed"] = _share(
        mt_fid["scores_exact_vs_preprocessed"], mt_fid["scores"]
    )
    mt_fid["share_scores_exact_vs_original"] = _share(
        mt_fid["scores_exact_vs_original"], mt_fid["scores"]
    )
    mt_fid["share_notes_preserved_vs_preprocessed"] = _share(
        mt_fid["notes_preserved_vs_preprocessed"], mt_fid["notes_preprocessed"]
    )
    mt_fid["share_notes_preserved_vs_original"] = _share(
        mt_fid["notes_preserved_vs_original"], mt_fid["notes_original"]
    )
    out["miditok"] = {
        "scores": n_scores,
        "notes": mt_notes,
        "tokens": mt_tokens,
        "tokens_per_note": round(mt_tokens / mt_notes, 3) if mt_notes else None,
        "vocab_size": len(mt),
        "load": load_record([it.sym_load_s for it in common], mt_notes),
        "preprocess": throughput(pre_best, n_scores, mt_notes, mt_tokens, pre_runs),
        "encode_no_preprocess": throughput(bare_best, n_scores, mt_notes, mt_tokens, bare_runs),
        "encode": throughput(full_best, n_scores, mt_notes, mt_tokens, full_runs),
        "decode": throughput(mdec_best, n_scores, mt_notes, mt_tokens, mdec_runs),
        "fidelity": mt_fid,
    }
    if midi_dir is None:  # the same MIDI files on both sides: file -> tokens, one loop each
        print(f"[{name}] timing file -> tokens end to end, both sides ...", flush=True)
        ours_e2e, mt_e2e = end_to_end(common, tok, mt, name == "pop909", repeat)
        ours["end_to_end"] = throughput(ours_e2e[0], n_scores, ours_notes, ours_tokens, ours_e2e[1])
        out["miditok"]["end_to_end"] = throughput(
            mt_e2e[0], n_scores, mt_notes, mt_tokens, mt_e2e[1]
        )
    out["ratios_ours_over_miditok"] = _ratios(ours, out["miditok"])
    return out


def end_to_end(
    items: Sequence[Item], tok: Tokenizer, mt: Any, beat_files: bool, repeat: int
) -> tuple[tuple[float, list[float]], tuple[float, list[float]]]:
    """(best seconds, runs) of file -> token ids for ours and for MidiTok, in alternating loops
    (so that both sides see the same machine load)."""

    def ours() -> list[list[int]]:
        ids = []
        for item in items:
            score = read_scores(item.path)[0]
            beats = item.path.parent / "beat_midi.txt"
            if beat_files and beats.is_file():
                score = apply_beat_file(score, beats)
            prepared, _ = prepare(score, resolution=tok.vocab.resolution)
            ids.append(tok.encode(prepared))
        return ids

    def theirs() -> list[Any]:
        return [mt.encode(symusic.Score(str(item.midi_path))) for item in items]

    ours_runs: list[float] = []
    mt_runs: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeat):
            ours_runs += timed(ours, 1)[1]
            mt_runs += timed(theirs, 1)[1]
    return (min(ours_runs), ours_runs), (min(mt_runs), mt_runs)


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole else None


def _ratios(ours: dict[str, Any], mt: dict[str, Any]) -> dict[str, Any]:
    """Throughput ratios (>1: ours faster) and the load ratio (>1: ours slower to load)."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    pairs = {
        "encode_notes_per_s": (ours["encode"], mt["encode_no_preprocess"], "notes_per_s"),
        "encode_tokens_per_s": (ours["encode"], mt["encode_no_preprocess"], "tokens_per_s"),
        "prepare_plus_encode_vs_encode_notes_per_s": (
            ours["prepare_plus_encode"],
            mt["encode"],
            "notes_per_s",
        ),
        "decode_notes_per_s": (ours["decode"], mt["decode"], "notes_per_s"),
        "decode_tokens_per_s": (ours["decode"], mt["decode"], "tokens_per_s"),
    }
    out = {key: ratio(a[field_], b[field_]) for key, (a, b, field_) in pairs.items()}
    out["load_seconds"] = ratio(ours["load"]["seconds"], mt["load"]["seconds"])
    if "end_to_end" in ours and "end_to_end" in mt:
        out["end_to_end_files_per_s"] = ratio(
            ours["end_to_end"]["scores_per_s"], mt["end_to_end"]["scores_per_s"]
        )
    return {"meaning": ">1: ours faster; for load_seconds >1: ours slower", **out}


# -- inputs, environment, report ---------------------------------------------------------------


def pop909_paths(limit: int) -> list[Path]:
    paths = sorted(POP909_DIR.glob("*/*.mid"))
    return paths[:limit] if limit > 0 else paths


def bach_paths(limit: int) -> list[Path]:
    from music21 import corpus

    paths = sorted(
        Path(p)
        for p in corpus.getPaths()
        if "/corpus/bach/" in str(p) and str(p).endswith(BACH_SUFFIXES)
    )
    return paths[:limit] if limit > 0 else paths


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    changes = git("status", "--porcelain", "--untracked-files=no", "--", "pipeline")
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "git_commit": commit,
        "pipeline_has_uncommitted_changes": None if changes is None else bool(changes),
        "versions": {
            d: _version(d) for d in ("gnm", "miditok", "symusic", "music21", "miditoolkit")
        },
    }


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}{unit}"
    return f"{value:.3g}{unit}"


def print_table(name: str, result: dict[str, Any]) -> None:
    ours, mt = result["ours"], result["miditok"]
    skipped = ", ".join(f"{k} x{v}" for k, v in result["skipped"].items()) or "none"
    print(f"\n== {name}: {result['compared_scores']} scores compared of {result['files']} files")
    print(f"   skipped: {skipped}; read errors: {result['read_errors'] or 'none'}")
    print(
        f"   sources: ours = {result['sources']['ours']}; MidiTok = {result['sources']['miditok']}"
    )
    rows: list[tuple[str, float | None, float | None]] = [
        ("load files/s", ours["load"]["files_per_s"], mt and mt["load"]["files_per_s"]),
        (
            "prepare / preprocess notes/s",
            ours["prepare"]["notes_per_s"],
            mt and mt["preprocess"]["notes_per_s"],
        ),
        (
            "encode notes/s",
            ours["encode"]["notes_per_s"],
            mt and mt["encode_no_preprocess"]["notes_per_s"],
        ),
        (
            "encode tokens/s",
            ours["encode"]["tokens_per_s"],
            mt and mt["encode_no_preprocess"]["tokens_per_s"],
        ),
        (
            "encode scores/s",
            ours["encode"]["scores_per_s"],
            mt and mt["encode_no_preprocess"]["scores_per_s"],
        ),
        (
            "prep+encode notes/s",
            ours["prepare_plus_encode"]["notes_per_s"],
            mt and mt["encode"]["notes_per_s"],
        ),
        ("decode notes/s", ours["decode"]["notes_per_s"], mt and mt["decode"]["notes_per_s"]),
        ("decode tokens/s", ours["decode"]["tokens_per_s"], mt and mt["decode"]["tokens_per_s"]),
        ("decode scores/s", ours["decode"]["scores_per_s"], mt and mt["decode"]["scores_per_s"]),
        ("tokens/note (lower: shorter)", ours["tokens_per_note"], mt and mt["tokens_per_note"]),
        (
            "round trip: scores exact",
            ours["fidelity"]["share_scores_exact"],
            mt and mt["fidelity"]["share_scores_exact_vs_preprocessed"],
        ),
        (
            "round trip: notes kept",
            ours["fidelity"]["share_notes_preserved"],
            mt and mt["fidelity"]["share_notes_preserved_vs_preprocessed"],
        ),
        (
            "vs original: scores exact",
            None,
            mt and mt["fidelity"]["share_scores_exact_vs_original"],
        ),
        (
            "vs original: notes kept",
            None,
            mt and mt["fidelity"]["share_notes_preserved_vs_original"],
        ),
    ]
    print(f"   {'':32}{'ours':>14}{'MidiTok':>14}{'ours/MidiTok':>14}")
    for label, a, b in rows:
        ratio = a / b if a and b else None
        print(f"   {label:32}{_fmt(a):>14}{_fmt(b):>14}{_fmt(ratio, 'x'):>14}")
    fid = ours["fidelity"]
    print(
        f"   ours: meters exact in {fid['scores_meters_exact']}/{fid['scores']} scores, "
        f"{fid['unison_merged']} unisons merged, {fid['durations_clipped']} durations clipped, "
        f"{_fmt(fid['share_notes_moved_by_quantise'])} of notes moved by quantisation"
    )
    if mt:
        f = mt["fidelity"]
        lost, total = f["time_signature_changes_lost_or_changed"], f["time_signature_changes"]
        print(
            f"   MidiTok: time-signature changes lost or changed {lost}/{total}; "
            f"errors {f['errors']}"
        )
    else:
        print("   MidiTok: skipped (miditok not installed, or --no-miditok)")
    if result.get("failure_count"):
        print(f"   failures: {result['failure_count']} (first: {result['failures'][0]})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--limit-pop909", type=int, default=0, help="first N POP909 files (0: all 909)"
    )
    parser.add_argument(
        "--limit-bach", type=int, default=0, help="first N Bach chorales (0: all ~413)"
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs per timed loop, best kept (min 2)"
    )
    parser.add_argument("--no-miditok", action="store_true", help="skip the MidiTok half")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    repeat = max(2, args.repeat)
    use_miditok = miditok is not None and not args.no_miditok
    if miditok is None:
        print("note: miditok is not installed; the MidiTok half is skipped (pip install miditok)")

    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "tokenizer",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", *sys.argv]),
        "machine": machine_info(),
        "settings": {
            "repeat": repeat,
            "limit_pop909": args.limit_pop909,
            "limit_bach": args.limit_bach,
            "timing": "time.perf_counter, GC off in timed loops, best of `repeat` runs",
            "load_timing": "per file, best of `repeat` reads; music21 reuses its pickle cache",
            "miditok_config": {k: str(v) for k, v in MIDITOK_CONFIG.items()}
            if use_miditok
            else None,
            "ours_fidelity": "decode(encode(p)).note_keys() == distinct (onset, pitch, "
            "min(dur, max)) of p, p = prepare(raw); meters compared bar by bar",
            "miditok_fidelity": "decoded notes (quarters) vs preprocess_score(original) "
            "and vs original",
        },
        "datasets": {},
    }
    datasets = report["datasets"]
    datasets["pop909"] = run_dataset(
        "pop909",
        pop909_paths(args.limit_pop909),
        repeat=repeat,
        use_miditok=use_miditok,
        midi_dir=None,
    )
    with tempfile.TemporaryDirectory(prefix="gnm-bench-") as tmp:
        datasets["bach_chorales"] = run_dataset(
            "bach_chorales",
            bach_paths(args.limit_bach),
            repeat=repeat,
            use_miditok=use_miditok,
            midi_dir=Path(tmp),
        )
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    if not use_miditok:
        report["miditok"] = None

    for name, result in datasets.items():
        print_table(name, result)
    write_text_atomic(args.out, json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {args.out} ({report['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
