"""The ledger: one row per input item with its final status and the stage that decided it.

Every stage writes its decisions (`decisions.parquet` in its output folder) with the columns of
DECISIONS_SCHEMA. The ingest stage decides about every input (accepted, or quarantined when the
file cannot be read); later stages only add rows for the items they reject. `merge` applies them in
stage order: the first rejection of an item is final. Statuses are `accepted`,
`duplicate_of:<id>`, `merged_into:<id>` (a voice of a piece read as one tune of an ABC book,
merged into the piece's item) and `quarantined:<reason>`; `summary` counts them per corpus and
checks that the counts add up to the inputs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import GnmError
from pipeline.io.atomic import write_table_atomic, write_text_atomic

DECISIONS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("corpus", pa.string()),
        ("rel_path", pa.string()),
        ("item", pa.string()),
        ("stage", pa.string()),
        ("status", pa.string()),
        ("detail", pa.string()),
    ]
)

ACCEPTED = "accepted"
FALLBACK_PREFIX = "reader_fallback:"  # in an ingest detail: the reference reader read this item
# What `Decision.kind` can be, in the order summaries list them.
KINDS = ("accepted", "duplicate", "merged", "quarantined")
_KIND_OF_PREFIX = {"duplicate_of": "duplicate", "merged_into": "merged"}


@dataclass(frozen=True)
class Decision:
    """One stage's verdict on one item."""

    id: str
    corpus: str
    rel_path: str
    item: str | None
    stage: str
    status: str
    detail: str = ""

    @classmethod
    def of(cls, row: Mapping[str, Any], stage: str, status: str, detail: str = "") -> Decision:
        """A decision about the item of a pieces row (its id, corpus, path and item)."""
        return cls(row["id"], row["corpus"], row["rel_path"], row["item"], stage, status, detail)

    @property
    def kind(self) -> str:
        """`accepted`, `duplicate`, `merged` or `quarantined` (see KINDS)."""
        prefix = self.status.split(":", 1)[0]
        return _KIND_OF_PREFIX.get(prefix, prefix)


def quarantined(reason: str) -> str:
    """The status string for a quarantine reason."""
    return f"quarantined:{reason}"


def duplicate_of(item_id: str) -> str:
    """The status string for a duplicate."""
    return f"duplicate_of:{item_id}"


def merged_into(item_id: str) -> str:
    """The status string for a voice merged into the item of its piece."""
    return f"merged_into:{item_id}"


def write_decisions(decisions: Iterable[Decision], path: Path) -> None:
    """Write decisions as Parquet, sorted by id, atomically."""
    rows = sorted((asdict(d) for d in decisions), key=lambda r: r["id"])
    table = pa.Table.from_pylist(rows, schema=DECISIONS_SCHEMA)
    write_table_atomic(table, path)


def read_decisions(path: Path) -> list[Decision]:
    """Read a stage's decisions file."""
    if not path.is_file():
        raise GnmError(f"{path}: no decisions file (run the stage that writes it first)")
    return [Decision(**row) for row in pq.read_table(path).to_pylist()]


def merge(stages: Sequence[Sequence[Decision]]) -> list[Decision]:
    """Final decisions: the first stage (ingest) lists every input; later rejections override."""
    if not stages:
        return []
    final = {d.id: d for d in stages[0]}
    for decisions in stages[1:]:
        for d in decisions:
            if d.id not in final:
                raise GnmError(f"stage {d.stage} decided about {d.id}, which ingest never listed")
            if final[d.id].status == ACCEPTED and d.status != ACCEPTED:
                final[d.id] = d
    return [final[k] for k in sorted(final)]


def summary(ledger: Sequence[Decision], n_inputs: int | None = None) -> dict[str, Any]:
    """Counts per corpus and status kind, reasons, and whether they add up to the inputs."""
    per_corpus: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    for d in ledger:
        per_corpus.setdefault(d.corpus, Counter())[d.kind] += 1
        if d.kind == "quarantined":
            reasons[d.status.split(":", 1)[1]] += 1
    totals: Counter[str] = Counter()
    for counts in per_corpus.values():
        totals.update(counts)
    out: dict[str, Any] = {
        "items": len(ledger),
        **{k: totals[k] for k in KINDS},
        "by_corpus": {c: {k: per_corpus[c][k] for k in KINDS} for c in sorted(per_corpus)},
        "quarantine_reasons": dict(sorted(reasons.items())),
        "reader_fallbacks": reader_fallbacks(ledger),
    }
    out["adds_up"] = sum(out[k] for k in KINDS) == len(ledger) and (
        n_inputs is None or n_inputs == len(ledger)
    )
    return out


def reader_fallbacks(decisions: Iterable[Decision]) -> dict[str, int]:
    """How many items the reference reader read for the fast one, per construct (`<what>`).

    Ingest writes `reader_fallback:<what>` into an accepted item's detail; count the ingest
    decisions to include items that a later stage rejected.
    """
    counts: Counter[str] = Counter()
    for d in decisions:
        for part in d.detail.split("; ") if d.detail else ():
            if part.startswith(FALLBACK_PREFIX):
                counts[part.removeprefix(FALLBACK_PREFIX)] += 1
    return dict(sorted(counts.items()))


def write_ledger(
    ledger: Sequence[Decision], reports: Path, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Write `ledger.parquet` and `ledger.json` (the summary) into `reports`; return the summary."""
    reports.mkdir(parents=True, exist_ok=True)
    write_decisions(ledger, reports / "ledger.parquet")
    info = summary(ledger)
    if extra:
        info.update(extra)
    write_text_atomic(reports / "ledger.json", json.dumps(info, indent=1, sort_keys=True) + "\n")
    return info
