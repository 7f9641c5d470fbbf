"""What a built piece lost on its way to the shards, for `gnm data inspect`'s header.

Three things, each from where the build left it:
- **reading**: the notes read against the notes its source writes (`notes` / `source_notes` of
  the shard row; the readers' counted drops, as verify's `notes_accounted`, are added to what
  was read). Under verify's `min_source_ratio` the reading is flagged LOST: a build with a lower
  ratio, or one from before the check, still ships such a piece, and a header that only says
  `notes: 911` hides that 60 % of it is missing.
- **quantisation**: the notes the grid moved (onsets, durations; tuplets, finer values) and the
  durations the vocabulary clipped, from the shard row.
- **counts**: everything a reader or stage counted in the piece's report (the `score_json` of
  the last stage folder that keeps scores), split into what was dropped (`*_dropped`,
  `*_ignored`, `*_clipped`) and what was changed (`ties_merged`, `octave_folded`, ...); the
  `reader` row already names a fallback to the reference reader.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.ledger import FALLBACK_PREFIX
from pipeline.readers.parser_messages import PARSER_WARNINGS
from pipeline.stages.quantize import COLUMNS as QUANTIZE_COLUMNS
from pipeline.stages.verify import COUNTED_DROPS

SCORE_STAGES = ("quantize", "meter", "ingest")  # stage folders keeping scores, latest first
DROP_SUFFIXES = ("_dropped", "_ignored", "_clipped")
# Counted in the shard row after the last score folder (tokenize), or carried by it.
ROW_COUNTS = ("octave_folded", "unison_merged", "grace_dropped")
# Report keys shown elsewhere in the header, or not counts of notes or events.
_SHOWN_ELSEWHERE = {
    "source_notes",
    "source_measures",
    PARSER_WARNINGS,
    "zero_length_extended",
    *(f.name for f in QUANTIZE_COLUMNS),
}


def piece_report(stages_dir: Path, item_id: str) -> dict[str, float]:
    """The report of `item_id`'s score in the latest stage folder that keeps it ({} if none)."""
    import pyarrow.parquet as pq

    for stage in SCORE_STAGES:
        path = stages_dir / stage / "pieces.parquet"
        if not path.is_file():
            continue
        table = pq.read_table(path, columns=["id", "score_json"], filters=[("id", "=", item_id)])
        if table.num_rows:
            report: dict[str, float] = json.loads(table.column("score_json")[0].as_py())["report"]
            return report
    return {}


def losses(row: Mapping[str, Any], report: Mapping[str, float], min_ratio: float) -> dict[str, Any]:
    """The reading, quantisation and counted changes of one shard row (JSON-ready)."""
    read = int(row["notes"])
    written = row.get("source_notes")
    accounted = read + sum(int(report.get(k, 0)) for k in COUNTED_DROPS)
    ratio = accounted / written if written else None
    counts = {
        k: _number(v)
        for k, v in report.items()
        if v and k not in _SHOWN_ELSEWHERE and not k.startswith(FALLBACK_PREFIX)  # `reader` says it
    }
    counts.update({k: row[k] for k in ROW_COUNTS if row.get(k)})
    moved = {f.name: row.get(f.name) for f in QUANTIZE_COLUMNS if f.name != "grace_dropped"}
    return {
        "reading": {
            "notes": read,
            "accounted": accounted,  # read, plus the notes a reader dropped and counted
            "source_notes": written,
            "ratio": None if ratio is None else round(ratio, 4),
            "min_source_ratio": min_ratio,
            "lost": ratio is not None and ratio < min_ratio,
        },
        "quantisation": {**moved, "durations_clipped": row.get("durations_clipped") or 0},
        "dropped": {k: v for k, v in sorted(counts.items()) if k.endswith(DROP_SUFFIXES)},
        "changed": {k: v for k, v in sorted(counts.items()) if not k.endswith(DROP_SUFFIXES)},
        PARSER_WARNINGS: int(report.get(PARSER_WARNINGS, 0)),
    }


def _number(value: float) -> float:
    """A count as an int when it is whole (reports hold floats after a JSON round trip)."""
    return int(value) if float(value).is_integer() else value


def _count(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def header_lines(found: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) lines of the header: `notes: 911 read of 2,284 written (39.9%) LOST ...`."""
    reading, grid = found["reading"], found["quantisation"]
    read, written = reading["notes"], reading["source_notes"]
    if not written:
        notes = f"{read:,} (not counted in the source: MIDI, or an uncountable file)"
    else:
        extra = reading["accounted"] - read
        counted = f" (+{extra:,} dropped and counted)" if extra else ""
        notes = f"{read:,} read{counted} of {written:,} written ({100 * reading['ratio']:.1f}%)"
        if reading["lost"]:
            notes += (
                f" — LOST: under verify's min_source_ratio {reading['min_source_ratio']:g}; "
                f"{written - reading['accounted']:,} of the source's notes are missing"
            )
    moved = grid["notes_moved"] or 0
    quantisation = (
        f"{moved:,} of {read:,} notes moved ({100 * moved / max(read, 1):.1f}%): "
        f"{grid['onsets_moved'] or 0:,} onsets, {grid['durations_moved'] or 0:,} durations "
        f"({grid['moved_tuplet'] or 0:,} tuplet, {grid['moved_finer_value'] or 0:,} finer value); "
        f"onset error max {grid['onset_error_max_ticks'] or 0:g} ticks; "
        f"{grid['durations_clipped']:,} durations clipped"
    )

    def listed(counts: Mapping[str, float]) -> str:
        return ", ".join(f"{k} {_count(v)}" for k, v in counts.items()) or "none counted"

    lines = [
        ("notes", notes),
        ("quantisation", quantisation),
        ("dropped", listed(found["dropped"])),
        ("changed", listed(found["changed"])),
    ]
    if found[PARSER_WARNINGS]:
        lines.append(("parser warnings", f"{found[PARSER_WARNINGS]:,} (see ledger ingest)"))
    return lines
