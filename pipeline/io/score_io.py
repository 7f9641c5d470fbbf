"""Canonical scores to and from plain data: JSON-able dicts (the ingest cache) and Arrow tables
(the ingest stage's Parquet output: one `pieces` row per score, one `notes` row per note).

Fractions are written exactly: as `"n/d"` strings in dicts and nested columns, as integer
numerator/denominator columns in the notes table. Notes go both ways column by column (from and to
a score's `NoteTable`), without a Python object per note.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.notes import NoteTable, fraction
from pipeline.score import Meter, Part, Score, ScoreMeta, TempoChange, new_bar

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


@lru_cache(maxsize=1 << 16)
def _fr(text: str) -> Fraction:
    """The Fraction `_f` wrote ("n/d", or an integer): split by hand, not by Fraction's regex
    (3x faster), and cached: bar times repeat across scores."""
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
        "notes": _note_rows(score.table) if notes and len(score.table) else [],
        "bars": [[_f(b.start), _f(b.length), str(b.meter), b.pickup] for b in score.bars],
        "parts": [[p.index, p.name, p.program, p.is_drum] for p in score.parts],
        "tempos": [[_f(t.onset), t.bpm] for t in score.tempos],
        "key": score.key,
        "report": dict(score.report),
        "pickup_shift": _f(score.pickup_shift),
    }


def _note_rows(table: NoteTable) -> list[list[int]]:
    """[onset num, onset den, pitch, duration num, duration den, velocity, part] per note."""
    onset_num, onset_den, dur_num, dur_den = table.fraction_columns()
    columns = (onset_num, onset_den, table.pitch, dur_num, dur_den, table.velocity, table.part)
    return [list(row) for row in zip(*(c.tolist() for c in columns), strict=True)]


def score_from_dict(data: Mapping[str, Any], *, validate: bool = True) -> Score:
    """Rebuild a score written by `score_to_dict`, validated unless `validate` is False (for
    callers that validate later, or that read what they wrote from a validated score)."""
    meta = data["meta"]
    score = Score(
        meta=ScoreMeta(
            meta["id"],
            meta["title"],
            meta["composer"],
            meta["source_path"],
            meta["collection_item"],
        ),
        notes=_table_from_rows(data["notes"]),
        bars=tuple(
            new_bar(_fr(s), _fr(length), Meter.parse(m), bool(pk))
            for s, length, m, pk in data["bars"]
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


def _table_from_rows(rows: list[list[int]]) -> NoteTable:
    """A note table from `_note_rows`' lists."""
    if not rows:
        return NoteTable.empty()
    columns = np.array(rows, dtype=object).T  # Python ints: a numerator may exceed int64
    return NoteTable.from_fractions(*columns)


def notes_table(scores: Iterable[Score]) -> pa.Table:
    """One row per note of every score, keyed by `piece` (the score id), column by column."""
    ids: list[str] = []
    counts: list[int] = []
    parts: list[list[np.ndarray]] = [[] for _ in range(7)]
    for score in scores:
        table = score.table
        if not len(table):
            continue
        ids.append(score.meta.id)
        counts.append(len(table))
        onset_num, onset_den, dur_num, dur_den = table.fraction_columns()
        columns = (onset_num, onset_den, table.pitch, dur_num, dur_den, table.velocity, table.part)
        for store, column in zip(parts, columns, strict=True):
            store.append(column)
    names = NOTES_SCHEMA.names
    data: dict[str, Any] = {"piece": pa.array(np.repeat(np.array(ids, dtype=object), counts))}
    for name, chunks in zip(names[1:], parts, strict=True):
        field_type = NOTES_SCHEMA.field(name).type
        values = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
        data[name] = pa.array(values.tolist() if values.dtype == object else values, field_type)
    return pa.table(data, schema=NOTES_SCHEMA)
