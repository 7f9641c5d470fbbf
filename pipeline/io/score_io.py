"""Canonical scores to and from plain data: JSON-able dicts (the ingest cache) and Arrow tables
(the ingest stage's Parquet output: one `pieces` row per score, one `notes` row per note).

Fractions are written exactly: as `"n/d"` strings in dicts and nested columns, as integer
numerator/denominator columns in the notes table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from functools import lru_cache
from typing import Any

import pyarrow as pa

from pipeline.score import Bar, Meter, Note, Part, Score, ScoreMeta, TempoChange

NOTES_SCHEMA = pa.schema(
    [
        ("piece", pa.string()),
        ("onset_num", pa.int64()),
        ("onset_den", pa.int64()),
        ("pitch", pa.uint8()),
        ("dur_num", pa.int64()),
        ("dur_den", pa.int64()),
        ("velocity", pa.uint8()),
        ("part", pa.int32()),
    ]
)


def _f(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def _fr(text: str) -> Fraction:
    """The Fraction `_f` wrote ("n/d", or an integer): split by hand, not by Fraction's regex
    (3x faster), and shared through `fraction`."""
    num, _, den = text.partition("/")
    return fraction(int(num), int(den) if den else 1)


def score_to_dict(score: Score, *, notes: bool = True) -> dict[str, Any]:
    """A JSON-able dict holding every field of `score` exactly (`notes=False`: an empty note
    list, for stores that keep the notes elsewhere)."""
    m = score.meta
    return {
        "meta": {
            "id": m.id,
            "title": m.title,
            "composer": m.composer,
            "source_path": m.source_path,
            "collection_item": m.collection_item,
        },
        # Integers, not "n/d" strings: parsing Fraction strings made loading ten times slower.
        "notes": [
            [
                n.onset.numerator,
                n.onset.denominator,
                n.pitch,
                n.duration.numerator,
                n.duration.denominator,
                n.velocity,
                n.part,
            ]
            for n in (score.notes if notes else ())
        ],
        "bars": [[_f(b.start), _f(b.length), str(b.meter), b.pickup] for b in score.bars],
        "parts": [[p.index, p.name, p.program, p.is_drum] for p in score.parts],
        "tempos": [[_f(t.onset), t.bpm] for t in score.tempos],
        "key": score.key,
        "report": dict(score.report),
        "pickup_shift": _f(score.pickup_shift),
    }


@lru_cache(maxsize=1 << 16)
def fraction(num: int, den: int) -> Fraction:
    """`Fraction(num, den)`, shared: scores repeat few distinct values and building Fractions
    dominated the cost of loading them."""
    return Fraction(num, den)


@lru_cache(maxsize=1024)
def _meter(text: str) -> Meter:
    """`Meter.parse`, shared: a score repeats a few meters over hundreds of bars."""
    return Meter.parse(text)


def score_from_dict(data: Mapping[str, Any], *, validate: bool = True) -> Score:
    """Rebuild a score written by `score_to_dict`, validated unless `validate` is False (for
    callers that validate later, or that read what they wrote from a validated score)."""
    meta = data["meta"]
    q = fraction
    score = Score(
        meta=ScoreMeta(
            meta["id"],
            meta["title"],
            meta["composer"],
            meta["source_path"],
            meta["collection_item"],
        ),
        notes=tuple(
            Note(q(on, od), p, q(dn, dd), v, part) for on, od, p, dn, dd, v, part in data["notes"]
        ),
        bars=tuple(
            Bar(_fr(s), _fr(length), _meter(m), bool(pk)) for s, length, m, pk in data["bars"]
        ),
        parts=tuple(
            Part(int(i), str(name), int(prog), bool(drum)) for i, name, prog, drum in data["parts"]
        ),
        tempos=tuple(TempoChange(_fr(o), float(bpm)) for o, bpm in data["tempos"]),
        key=data["key"],
        report=dict(data["report"]),
        pickup_shift=_fr(data["pickup_shift"]),
    )
    return score.validate() if validate else score


def notes_table(scores: Iterable[Score]) -> pa.Table:
    """One row per note of every score, keyed by `piece` (the score id)."""
    rows: list[tuple[Any, ...]] = []
    for score in scores:
        sid = score.meta.id
        rows.extend(
            (sid, n.onset.numerator, n.onset.denominator, n.pitch,
             n.duration.numerator, n.duration.denominator, n.velocity, n.part)
            for n in score.notes
        )  # fmt: skip
    columns = zip(*rows, strict=True) if rows else [[] for _ in NOTES_SCHEMA.names]
    return pa.table(
        dict(zip(NOTES_SCHEMA.names, map(list, columns), strict=True)), schema=NOTES_SCHEMA
    )
