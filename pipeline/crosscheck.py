"""Compare the fast readers with the reference readers (music21, miditoolkit), item by item.

Two readings of one piece agree when their token sequences are equal after meter normalisation
and quantisation: what the model would see is the same. A difference names the first differing
bar and token and a one-line cause found by comparing the two scores before tokenizing.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any, Literal, get_args

from pipeline.corpora import CorpusDecl, SourceFile
from pipeline.errors import GnmError, ScoreParseError, Unsupported
from pipeline.executor import Limits, Outcome, run_isolated
from pipeline.ledger import FALLBACK_PREFIX
from pipeline.music.meter import MeterConfig
from pipeline.readers import reader_for
from pipeline.readers.common import ItemFailure
from pipeline.readers.fallback import Slot, item_slots
from pipeline.score import Score
from pipeline.stages import ingest
from pipeline.tokenizer import Tokenizer
from pipeline.tokenizer.chain import tokenize_score

Verdict = Literal[
    "identical",
    "reference_error",
    "different",
    "fast_fell_back",
    "reference_failed",
    "both_failed",
    "fast_failed",
]
QUIRK_PREFIX = "m21_quirk:"  # a fast reader's count of a music21 misreading it reproduced


@dataclass(frozen=True)
class ItemComparison:
    """The verdict on one item; `bar`/`token` locate the first difference (from 0)."""

    item: str | None
    verdict: Verdict
    cause: str = ""
    bar: int | None = None
    token: int | None = None
    fast_token: str | None = None
    reference_token: str | None = None


def _label(slot: Slot) -> str | None:
    """The item as ingest names it: `7`, then `7.2` for a second tune numbered 7."""
    key, nth = slot
    return key if nth == 0 else f"{key}.{nth + 1}"


def compare_items(
    fast: list[Score | ItemFailure] | GnmError,
    reference: list[Score | ItemFailure] | GnmError,
    tokenizer: Tokenizer,
    meter_cfg: MeterConfig | None = None,
    quirks_reading: Callable[[], list[Score | ItemFailure] | GnmError] | None = None,
) -> list[ItemComparison]:
    """Verdicts for every item of one file, read by both readers (or the error either raised).

    Items pair by collection item (`X:` number, then order among pieces of one number); an item
    only one reader produced is a difference of its own; a file one reader refuses gives a
    verdict per item the other read, so the counts do not depend on which side failed.
    `quirks_reading` (called at most once, only when an item differs) reads the file with the
    fast reader reproducing music21's known misreadings: an item whose quirks reading is
    identical to music21's is a `reference_error`, named by its quirks.
    """
    if isinstance(fast, GnmError) and isinstance(reference, GnmError):
        return [ItemComparison(None, "both_failed", f"fast: {fast}; reference: {reference}")]
    if isinstance(reference, GnmError) and not isinstance(fast, GnmError):
        return [
            ItemComparison(_label(k), "reference_failed", str(reference)) for k in item_slots(fast)
        ]
    if isinstance(fast, GnmError) and not isinstance(reference, GnmError):
        verdict: Verdict = "fast_fell_back" if isinstance(fast, Unsupported) else "fast_failed"
        return [ItemComparison(_label(k), verdict, str(fast)) for k in item_slots(reference)]
    assert not isinstance(fast, GnmError) and not isinstance(reference, GnmError)
    if not fast and not reference:
        return [ItemComparison(None, "both_failed", "neither reader finds a score in the file")]
    by_fast, by_ref = item_slots(fast), item_slots(reference)
    out: list[ItemComparison] = []
    order = sorted(
        by_fast.keys() | by_ref.keys(), key=lambda k: (k[0] is None, _natural(k[0]), k[1])
    )
    for slot in order:
        f, r, label = by_fast.get(slot), by_ref.get(slot), _label(slot)
        if r is None and isinstance(f, ItemFailure):
            out.append(ItemComparison(label, "fast_failed", f.detail))
        elif f is None and isinstance(r, ItemFailure):
            out.append(ItemComparison(label, "reference_failed", r.detail))
        elif r is None:
            out.append(ItemComparison(label, "different", "only the fast reader reads this item"))
        elif f is None:
            out.append(
                ItemComparison(label, "different", "only the reference reader reads this item")
            )
        elif isinstance(r, ItemFailure) and isinstance(f, ItemFailure):
            out.append(
                ItemComparison(label, "both_failed", f"fast: {f.detail}; reference: {r.detail}")
            )
        elif isinstance(r, ItemFailure):
            out.append(ItemComparison(label, "reference_failed", r.detail))
        elif isinstance(f, ItemFailure):
            verdict = "fast_fell_back" if f.reason.startswith("unsupported") else "fast_failed"
            out.append(ItemComparison(label, verdict, f.detail))
        elif _fallback(f):
            out.append(ItemComparison(label, "fast_fell_back", _fallback(f)))
        else:
            out.append(compare_scores(f, r, tokenizer, meter_cfg, label))
    if quirks_reading is None or all(c.verdict != "different" for c in out):
        return out
    quirked = quirks_reading()
    if isinstance(quirked, GnmError):
        return out
    by_quirked = {_label(k): p for k, p in item_slots(quirked).items()}
    by_label = {_label(k): p for k, p in by_ref.items()}
    return [_explained(c, by_quirked, by_label, tokenizer, meter_cfg) for c in out]


def _explained(
    comparison: ItemComparison,
    quirked: Mapping[str | None, Score | ItemFailure],
    reference: Mapping[str | None, Score | ItemFailure],
    tokenizer: Tokenizer,
    meter_cfg: MeterConfig | None,
) -> ItemComparison:
    """`comparison` as a `reference_error` when music21's known misreadings explain it."""
    q, r = quirked.get(comparison.item), reference.get(comparison.item)
    if comparison.verdict != "different" or not isinstance(q, Score) or not isinstance(r, Score):
        return comparison
    quirks = sorted(k.removeprefix(QUIRK_PREFIX) for k in q.report if k.startswith(QUIRK_PREFIX))
    if not quirks or compare_scores(q, r, tokenizer, meter_cfg).verdict != "identical":
        return comparison
    return dataclasses.replace(
        comparison,
        verdict="reference_error",
        cause=f"music21 misreads it ({', '.join(quirks)}); {comparison.cause}",
    )


def _fallback(score: Score) -> str:
    """The constructs (`<what>`) for which the reference reader read this score, or ''."""
    return "; ".join(
        sorted(
            k.removeprefix(FALLBACK_PREFIX) for k in score.report if k.startswith(FALLBACK_PREFIX)
        )
    )


def _natural(key: str | None) -> tuple[int, str]:
    if key is None:
        return (0, "")
    digits = "".join(c for c in key if c.isdigit())
    return (int(digits) if digits else 0, key)


def compare_scores(
    fast: Score,
    reference: Score,
    tokenizer: Tokenizer,
    meter_cfg: MeterConfig | None = None,
    item: str | None = None,
) -> ItemComparison:
    """Tokenize both readings of one piece and compare the sequences."""
    try:
        ref_ids = tokenize_score(reference, tokenizer, None, meter_cfg).ids
    except GnmError as exc:
        ref_error: GnmError | None = exc
        ref_ids = []
    else:
        ref_error = None
    try:
        fast_ids = tokenize_score(fast, tokenizer, None, meter_cfg).ids
    except GnmError as exc:
        if ref_error is not None and str(exc).split(":")[-1] == str(ref_error).split(":")[-1]:
            return ItemComparison(item, "identical", f"both fail to tokenize: {exc}")
        return ItemComparison(item, "different", f"fast reading fails to tokenize: {exc}")
    if ref_error is not None:
        return ItemComparison(
            item, "different", f"reference reading fails to tokenize: {ref_error}"
        )
    if fast_ids == ref_ids:
        return ItemComparison(item, "identical")
    at = next(
        (i for i, (a, b) in enumerate(zip(fast_ids, ref_ids, strict=False)) if a != b),
        min(len(fast_ids), len(ref_ids)),
    )
    bar_id = tokenizer.vocab.index["Bar"]
    bar = sum(1 for t in ref_ids[:at] if t == bar_id) - 1
    tokens = tokenizer.vocab.tokens
    return ItemComparison(
        item,
        "different",
        describe_difference(fast, reference),
        max(bar, 0),
        at,
        tokens[fast_ids[at]] if at < len(fast_ids) else "<end>",
        tokens[ref_ids[at]] if at < len(ref_ids) else "<end>",
    )


def describe_difference(fast: Score, reference: Score) -> str:
    """A one-line cause: the first of bars, meters, tempo, note count, notes that differ."""
    if len(fast.bars) != len(reference.bars):
        return f"bars: fast {len(fast.bars)}, reference {len(reference.bars)}"
    for i, (a, b) in enumerate(zip(fast.bars, reference.bars, strict=True)):
        if (a.length, a.meter, a.pickup) != (b.length, b.meter, b.pickup):
            return (
                f"bar {i}: fast {a.meter} length {a.length}{' pickup' if a.pickup else ''}, "
                f"reference {b.meter} length {b.length}{' pickup' if b.pickup else ''}"
            )
    if round(fast.tempo, 3) != round(reference.tempo, 3):
        return f"tempo: fast {fast.tempo:g}, reference {reference.tempo:g} BPM"
    fk, rk = Counter(fast.note_keys()), Counter(reference.note_keys())
    only_fast, only_ref = fk - rk, rk - fk
    if not only_fast and not only_ref:
        return "same notes and bars; differs after meter normalisation or quantisation"
    first = min([*only_fast, *only_ref])
    side = "fast" if first in only_fast else "reference"
    return (
        f"notes: fast {len(fast.notes)}, reference {len(reference.notes)}; "
        f"{len(only_fast)} only in fast, {len(only_ref)} only in reference; first only in {side}: "
        f"onset {_q(first[0])} pitch {first[1]} duration {_q(first[2])}"
    )


def _q(value: Fraction) -> str:
    return str(value) if value.denominator != 1 else str(value.numerator)


# -- whole corpora -----------------------------------------------------------------------------
REPORT_FORMAT = "gnm-crosscheck/1"
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)  # in the order reports list them


def _items(
    outcome: Outcome[list[Score | ItemFailure]] | Outcome[ingest.Parsed],
) -> list[Score | ItemFailure] | GnmError:
    """The readings of a file; its voice groups and parser messages are ingest's business."""
    if outcome.ok:
        return [i for i in outcome.value or [] if isinstance(i, Score | ItemFailure)]
    return ScoreParseError(outcome.detail or str(outcome.reason), outcome.reason or "error")


def crosscheck(
    files: Sequence[SourceFile],
    decls: Mapping[str, CorpusDecl],
    cfg: ingest.IngestConfig,
    cache_dir: Path | None,
    tokenizer: Tokenizer,
    meter_cfg: MeterConfig | None = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Read every file with both readers (through ingest's cache) and compare every item.

    `on_done(1)` after each file read by each reader, then after each file compared (three
    times the files in all). Returns the JSON report: counts per corpus and every item that is
    not identical, with its cause.
    """
    seconds: dict[str, float] = {}
    results: dict[str, ingest.IngestResult] = {}
    limits = Limits(cfg.timeout_s, cfg.memory_mb)
    try:
        for kind in ("fast", "reference"):
            started = time.perf_counter()
            results[kind] = ingest.run(
                files, decls, cfg, cache_dir, scheduler=scheduler, workers=workers,
                on_done=on_done, reader=kind,
            )  # fmt: skip
            seconds[kind] = round(time.perf_counter() - started, 2)
        by_corpus: dict[str, Counter[str]] = {}
        listed: list[dict[str, Any]] = []
        for i, source in enumerate(files):
            verdicts = compare_items(
                _items(results["fast"].outcome(i)),
                _items(results["reference"].outcome(i)),
                tokenizer,
                meter_cfg,
                partial(_read_with_quirks, source.path, limits),
            )
            counts = by_corpus.setdefault(source.corpus, Counter())
            for v in verdicts:
                counts[v.verdict] += 1
                if v.verdict != "identical":
                    item_id = source.id + (f"#X:{v.item}" if v.item is not None else "")
                    listed.append({"id": item_id, "corpus": source.corpus, **asdict(v)})
            if on_done:
                on_done(1)
    finally:
        for result in results.values():
            result.close()
    return {
        "format": REPORT_FORMAT,
        "files": len(files),
        "items": sum(sum(c.values()) for c in by_corpus.values()),
        "parsed": {kind: r.parsed for kind, r in results.items()},
        "seconds": seconds,
        "by_corpus": {name: _corpus_row(by_corpus[name]) for name in sorted(by_corpus)},
        "not_identical": sorted(listed, key=lambda r: r["id"]),
    }


def _read_with_quirks(path: Path, limits: Limits) -> list[Score | ItemFailure] | GnmError:
    """The fast reading of `path` that reproduces music21's known misreadings (isolated, like
    ingest); a GnmError when the fast reader has no such switch or the reading fails."""
    read = reader_for(path, "fast")
    if "quirks" not in inspect.signature(read).parameters:
        return GnmError(f"{path}: the fast reader has no quirks switch")
    outcome = run_isolated(partial(read, quirks=True), path, limits)
    return _items(outcome)


def _corpus_row(counts: Counter[str]) -> dict[str, Any]:
    items = sum(counts.values())
    row: dict[str, Any] = {"items": items, **{v: counts[v] for v in VERDICTS}}
    row["identical_share"] = round(counts["identical"] / items, 4) if items else 1.0
    # where the reference reader reads right: identical, or different only by music21's errors
    agreeing = counts["identical"] + counts["reference_error"]
    row["agreeing_share"] = round(agreeing / items, 4) if items else 1.0
    return row


def below_target(report: Mapping[str, Any], share: float, min_items: int = 50) -> list[str]:
    """Corpora of at least `min_items` items whose identical share is under `share`."""
    return [
        name
        for name, row in report["by_corpus"].items()
        if row["items"] >= min_items and row["identical_share"] < share
    ]
