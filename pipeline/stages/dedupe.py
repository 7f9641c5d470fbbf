"""The dedupe stage: signature -> find groups -> filter.

Four kinds of match, merged into groups by union-find:

* **exact**: the same bytes (sha256);
* **identity**: the same notes after transposition and tempo normalisation: onsets relative to
  the first, all times divided by the gcd of the inter-onset intervals and durations (so a piece
  notated at half speed matches), pitches relative to the lowest, unisons merged;
* **work**: the same declared work key (a declaration's `work_pattern`, e.g. opus and number
  from the file name): an early edition or a part file of a work joins its group however much
  its notes differ;
* **near**: most of one piece's shingles appear in the other: the *containment*
  |A ∩ B| / min(|A|, |B|) reaches `threshold` in either view of `pipeline.shingles` (each part's
  line, or the whole score's top and bass lines, which do not depend on how the notes are split
  into staves). Containment, not Jaccard, so that a movement without repeats matches the same
  movement with them, and an edition with extra ornaments still matches. Every pair that
  reaches the threshold is found (`pipeline.containment_join`: an exact join, not a sample).

Each group keeps one canonical member: the highest corpus priority, then the most notes, then the
smallest id; the others become `duplicate_of:<canonical id>`. The result does not depend on the
order of the inputs. Since the shard stage splits by group, a work never straddles splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.containment_join import containment, containment_pairs
from pipeline.io.atomic import write_table_atomic
from pipeline.ledger import Decision, duplicate_of, write_decisions
from pipeline.notes import INT64_SAFE, divide, magnitude
from pipeline.score import Score
from pipeline.shingles import part_shingles, piece_views, whole_shingles
from pipeline.stages.base import Stage, stage_input

STAGE = "dedupe"
SIGNATURE_BATCH = 256  # items whose signatures are computed together (bounds memory)
MATCHES_SCHEMA = pa.schema(
    [("a", pa.string()), ("b", pa.string()), ("via", pa.string()), ("containment", pa.float64())]
)
GROUPS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("group", pa.string()),
        ("via", pa.string()),
        ("containment", pa.float64()),
        ("work", pa.string()),  # the item's declared work key (null: none declared)
    ]
)


@dataclass(frozen=True)
class DedupeConfig:
    """Parameters of dedupe (params.yaml section `dedupe`)."""

    ngram: int = 5
    threshold: float = 0.6
    min_shingles: int = 12

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        if self.ngram < 2:
            raise ValueError("ngram must be at least 2")


@dataclass(frozen=True, eq=False)
class Signature:
    """What dedupe needs of one item (kept for every item until the groups are known)."""

    id: str
    sha256: str  # content hash of the file, plus `#<item>` for an item of a collection
    priority: int
    notes: int
    identity: str
    work: str | None  # declared work key
    shingles: np.ndarray  # parts view: sorted, distinct uint32 (4 bytes a shingle)
    whole: np.ndarray  # whole view (top and bass lines of the whole score), likewise


def identity_hash(score: Score) -> str:
    """Hash of the notes after transposition and tempo normalisation (see module docstring).

    On the note columns: onsets relative to the first and every duration are whole ticks, so the
    unit (the gcd of the inter-onset intervals and durations) is a whole number of ticks and
    every normalised time an integer. Only equality of two hashes matters (dedupe buckets by
    it), so the hash is over the normalised (onset, pitch, duration) rows as int64 bytes; rows
    past int64 are hashed as text (`o,p,d;` each), behind another prefix: the two never meet.
    """
    table = score.table
    if not len(table):
        return ""
    onset, pitch, duration, _, _ = table.columns()
    order = np.lexsort((duration, pitch, onset))
    onset, pitch, duration = onset[order], pitch[order], duration[order]
    distinct = np.ones(len(onset), dtype=bool)
    distinct[1:] = (
        (onset[1:] != onset[:-1]) | (pitch[1:] != pitch[:-1]) | (duration[1:] != duration[:-1])
    )
    onset, pitch, duration = onset[distinct] - onset[0], pitch[distinct], duration[distinct]
    unit = int(np.gcd.reduce(np.concatenate((onset, duration)))) or 1
    rows = (onset // unit, pitch - pitch.min(), duration // unit)
    if max(magnitude(c) for c in rows) < INT64_SAFE:
        packed = np.stack([np.asarray(c, dtype=np.int64) for c in rows], axis=1)
        return hashlib.sha256(b"int64:" + packed.tobytes()).hexdigest()
    steps = zip(*(c.tolist() for c in rows), strict=True)
    text = "text:" + "".join(f"{o},{p},{d};" for o, p, d in steps)
    return hashlib.sha256(text.encode()).hexdigest()


def _note_arrays(score: Score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Onsets (quarters, float64: each the correctly rounded tick / resolution, as
    `float(Fraction)`), pitches and parts of a score's notes."""
    table = score.table
    onsets = divide(table.onset, table.resolution)
    return onsets, table.pitch, table.part


def shingles(score: Score, n: int) -> np.ndarray:
    """The parts view of a score (see `pipeline.shingles`): sorted distinct uint32."""
    onsets, pitches, parts = _note_arrays(score)
    return part_shingles(onsets, pitches, parts, n)


def whole_view(score: Score, n: int) -> np.ndarray:
    """The whole view of a score, parts ignored (see `pipeline.shingles`)."""
    onsets, pitches, _ = _note_arrays(score)
    return whole_shingles(onsets, pitches, n)


def signature(score: Score, row: Mapping[str, Any], cfg: DedupeConfig) -> Signature:
    """The signature of one ingested item."""
    return signatures([(row, score)], cfg)[0]


def signatures(
    items: Sequence[tuple[Mapping[str, Any], Score]], cfg: DedupeConfig
) -> list[Signature]:
    """The signatures of many items, both shingle views computed for all of them at once (one
    numpy pass: per item, the calls cost more than the work)."""
    tables = [score.table for _, score in items]
    piece = np.repeat(np.arange(len(tables)), [len(t) for t in tables])
    onsets, pitches, parts = (
        np.concatenate([np.zeros(0, dtype=np.int64), *(column(t) for t in tables)])
        for column in (lambda t: divide(t.onset, t.resolution), lambda t: t.pitch, lambda t: t.part)
    )
    part_views, whole_views = piece_views(piece, onsets, pitches, parts, cfg.ngram, len(tables))
    return [
        Signature(
            id=score.meta.id,
            # Items of one collection file share its bytes: the exact key is the file and item.
            sha256=f"{row['sha256']}#{row['item']}"
            if row.get("item") is not None
            else row["sha256"],
            priority=int(row["priority"]),
            notes=len(score.notes),
            identity=identity_hash(score),
            work=row.get("work") or None,
            shingles=parts_view,
            whole=whole,
        )
        for (row, score), parts_view, whole in zip(items, part_views, whole_views, strict=True)
    ]


class _UnionFind:
    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {i: i for i in items}

    def find(self, x: str) -> str:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # deterministic: the smaller id is the root


@dataclass(frozen=True)
class Match:
    """Why two items are in one group (`containment`: the larger of the two views')."""

    a: str
    b: str
    via: str
    containment: float


def similarity(x: Signature, y: Signature) -> float:
    """The containment of two items: the larger of their parts view's and whole view's."""
    return max(containment(x.shingles, y.shingles), containment(x.whole, y.whole))


def find_matches(sigs: Sequence[Signature], cfg: DedupeConfig) -> list[Match]:
    """Every duplicate pair found: exact, identity, work, and near (every pair over the threshold)."""
    matches: list[Match] = []
    keys: tuple[tuple[str, Callable[[Signature], str | None]], ...] = (
        ("exact", lambda s: s.sha256),
        ("identity", lambda s: s.identity),
        ("work", lambda s: s.work),
    )
    for via, key in keys:
        buckets: dict[str, list[Signature]] = {}
        for s in sigs:
            value = key(s)
            if value:
                buckets.setdefault(value, []).append(s)
        for members in buckets.values():
            first, *rest = sorted(members, key=lambda s: s.id)
            for other in rest:
                # A work match records how alike the music is: the ledger then shows an early
                # edition that only its declared work key joined (a low containment).
                score = round(similarity(first, other), 4) if via == "work" else 1.0
                matches.append(Match(first.id, other.id, via, score))
    near: dict[tuple[str, str], float] = {}
    for view in (lambda s: s.shingles, lambda s: s.whole):
        usable = [s for s in sigs if len(view(s)) >= cfg.min_shingles]
        for i, j, c in containment_pairs([view(s) for s in usable], cfg.threshold):
            pair = (min(usable[i].id, usable[j].id), max(usable[i].id, usable[j].id))
            near[pair] = max(near.get(pair, 0.0), c)
    matches.extend(Match(a, b, "near", round(c, 4)) for (a, b), c in sorted(near.items()))
    return matches


def group(sigs: Sequence[Signature], matches: Sequence[Match]) -> dict[str, str]:
    """item id -> canonical id of its group (itself when it has no duplicate)."""
    uf = _UnionFind(s.id for s in sigs)
    for m in matches:
        uf.union(m.a, m.b)
    members: dict[str, list[Signature]] = {}
    for s in sigs:
        members.setdefault(uf.find(s.id), []).append(s)
    canonical: dict[str, str] = {}
    for group_members in members.values():
        best = min(group_members, key=lambda s: (-s.priority, -s.notes, s.id))
        for s in group_members:
            canonical[s.id] = best.id
    return canonical


def run(
    pieces: Sequence[Mapping[str, Any]],
    scores: Sequence[Score],
    cfg: DedupeConfig,
    on_done: Callable[[int], None] | None = None,
) -> tuple[list[Decision], list[dict[str, Any]], list[Match]]:
    """Decisions for duplicates, one group row per item, and the matches that made the groups."""
    return run_items(zip(pieces, scores, strict=True), cfg, on_done)


def run_items(
    items: Iterable[tuple[Mapping[str, Any], Score]],
    cfg: DedupeConfig,
    on_done: Callable[[int], None] | None = None,
) -> tuple[list[Decision], list[dict[str, Any]], list[Match]]:
    """`run` over streamed (row, score) pairs: only the signatures are kept, not the scores."""
    sigs: list[Signature] = []
    by_id: dict[str, Mapping[str, Any]] = {}
    for batch in _batches(items, SIGNATURE_BATCH):
        sigs += signatures(batch, cfg)
        for row, _ in batch:
            by_id[row["id"]] = {k: row[k] for k in ("id", "corpus", "rel_path", "item")}
        if on_done:
            on_done(len(batch))
    matches = find_matches(sigs, cfg)
    canonical = group(sigs, matches)
    via: dict[str, tuple[str, float]] = {}
    for m in matches:
        for x in (m.a, m.b):
            if x not in via or m.containment > via[x][1]:
                via[x] = (m.via, m.containment)
    work = {s.id: s.work for s in sigs}
    decisions = []
    groups = []
    for item_id in sorted(canonical):
        keep = canonical[item_id]
        how, score_c = via.get(item_id, ("", 0.0))
        groups.append(
            {
                "id": item_id,
                "group": keep,
                "via": how,
                "containment": score_c,
                "work": work[item_id],
            }
        )
        if keep != item_id:
            decisions.append(
                Decision.of(
                    by_id[item_id],
                    STAGE,
                    duplicate_of(keep),
                    f"{how} {score_c:.2f}",
                )
            )
    return decisions, groups, matches


def _batches(
    items: Iterable[tuple[Mapping[str, Any], Score]], size: int
) -> Iterator[list[tuple[Mapping[str, Any], Score]]]:
    batch: list[tuple[Mapping[str, Any], Score]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_groups(groups: Sequence[Mapping[str, Any]], path: Any) -> None:
    """Write the item -> group table (the shard stage splits by group)."""
    write_table_atomic(pa.Table.from_pylist(list(groups), schema=GROUPS_SCHEMA), path)


def write_outputs(
    decisions: Sequence[Decision],
    groups: Sequence[Mapping[str, Any]],
    matches: Sequence[Match],
    out_dir: Path,
) -> None:
    """The stage's folder: decisions.parquet (the duplicates), groups.parquet (item -> group)
    and matches.parquet (every pair found, with how and how strongly)."""
    write_decisions(decisions, out_dir / "decisions.parquet")
    write_groups(groups, out_dir / "groups.parquet")
    rows = [m.__dict__ for m in matches]
    write_table_atomic(
        pa.Table.from_pylist(rows, schema=MATCHES_SCHEMA), out_dir / "matches.parquet"
    )


SPEC = Stage(
    "dedupe",
    sections={"dedupe": DedupeConfig},
    inputs=(stage_input("ingest"),),
    decides=True,  # duplicate_of:<id>; groups.parquet and matches.parquet beside
)
