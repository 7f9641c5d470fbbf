"""The dedupe stage: signature -> find groups -> filter.

Three kinds of duplicate, found together and merged into groups by union-find:

* **exact**: the same bytes (sha256);
* **identity**: the same notes after transposition and tempo normalisation: onsets relative to
  the first, all times divided by the gcd of the inter-onset intervals and durations (so a piece
  notated at half speed matches), pitches relative to the lowest, unisons merged;
* **near**: most of one piece's n-grams appear in the other. Shingles are n-grams of (pitch
  interval, inter-onset ratio) along each part's line (its top note per onset), pooled over the
  parts; MinHash signatures with LSH banding propose candidate pairs, and each
  candidate's exact *containment* |A ∩ B| / min(|A|, |B|) must reach `threshold`. Containment,
  not Jaccard, so that a movement without repeats matches the same movement with them, and an
  edition with extra ornaments still matches.

Each group keeps one canonical member: the highest corpus priority, then the most notes, then the
smallest id; the others become `duplicate_of:<canonical id>`. The result does not depend on the
order of the inputs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import reduce
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.ledger import Decision, duplicate_of, write_table_atomic
from pipeline.score import Score

STAGE = "dedupe"
_PRIME = (1 << 31) - 1
MATCHES_SCHEMA = pa.schema(
    [("a", pa.string()), ("b", pa.string()), ("via", pa.string()), ("containment", pa.float64())]
)
GROUPS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("group", pa.string()),
        ("via", pa.string()),
        ("containment", pa.float64()),
    ]
)


@dataclass(frozen=True)
class DedupeConfig:
    """Parameters of dedupe (params.yaml section `dedupe`)."""

    ngram: int = 5
    num_perm: int = 128
    bands: int = 32
    threshold: float = 0.6
    min_shingles: int = 12
    seed: int = 20250101

    def __post_init__(self) -> None:
        if self.num_perm % self.bands:
            raise ValueError("num_perm must be a multiple of bands")
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
    shingles: np.ndarray  # sorted, distinct uint32: 4 bytes a shingle, not a Python int's 60


def identity_hash(score: Score) -> str:
    """Hash of the notes after transposition and tempo normalisation (see module docstring)."""
    events = sorted({(n.onset, n.pitch, n.duration) for n in score.notes})
    if not events:
        return ""
    t0 = events[0][0]
    low = min(p for _, p, _ in events)
    steps = [o - t0 for o, _, _ in events if o != t0] + [d for _, _, d in events]
    unit = reduce(_fraction_gcd, steps, Fraction(0)) or Fraction(1)
    digest = hashlib.sha256()
    for onset, pitch, duration in events:
        digest.update(f"{(onset - t0) / unit},{pitch - low},{duration / unit};".encode())
    return digest.hexdigest()


def _fraction_gcd(a: Fraction, b: Fraction) -> Fraction:
    return Fraction(
        math.gcd(a.numerator * b.denominator, b.numerator * a.denominator),
        a.denominator * b.denominator,
    )


def _line_shingles(line: Sequence[tuple[Fraction, int]], n: int, tag: int) -> Iterable[int]:
    """n-grams of (interval, quantised log2 inter-onset ratio) along one line."""
    steps: list[tuple[int, int]] = []
    for (o0, p0), (o1, p1), (o2, _) in zip(line, line[1:], line[2:], strict=False):
        ratio = round(2 * math.log2(float((o2 - o1) / (o1 - o0))))
        steps.append((p1 - p0, ratio))
    for i in range(len(steps) - n + 1):
        yield hash((tag, *steps[i : i + n])) & 0x7FFFFFFF


def shingles(score: Score, n: int) -> np.ndarray:
    """Shingles of every part's line (its top note per onset), pooled: sorted distinct uint32.

    Per part, not over the whole texture: two editions of a quartet or a sonata differ in many
    small places (a tie, an inner voice, a grace note), and a line drawn through all parts changes
    at every such place, while each part's own line changes only where that part does.
    """
    lines: dict[int, dict[Fraction, int]] = {}
    for note in score.notes:
        line = lines.setdefault(note.part, {})
        line[note.onset] = max(line.get(note.onset, 0), note.pitch)
    out: set[int] = set()
    for line in lines.values():
        out.update(_line_shingles(sorted(line.items()), n, 0))
    return np.array(sorted(out), dtype=np.uint32)


def signature(score: Score, row: Mapping[str, Any], cfg: DedupeConfig) -> Signature:
    """The signature of one ingested item."""
    return Signature(
        id=score.meta.id,
        # Items of one collection file share its bytes: the exact key is the file and the item.
        sha256=f"{row['sha256']}#{row['item']}" if row.get("item") is not None else row["sha256"],
        priority=int(row["priority"]),
        notes=len(score.notes),
        identity=identity_hash(score),
        shingles=shingles(score, cfg.ngram),
    )


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


def minhashes(sigs: Sequence[Signature], cfg: DedupeConfig) -> np.ndarray:
    """(items, num_perm) MinHash matrix of the shingle sets (empty sets give all-max rows).

    Hashes are below the prime 2**31 - 1, so the matrix is uint32 (computed in uint64): half
    the memory of the one array dedupe holds for every item at once.
    """
    rng = np.random.default_rng(cfg.seed)
    a = rng.integers(1, _PRIME, size=cfg.num_perm, dtype=np.uint64)
    b = rng.integers(0, _PRIME, size=cfg.num_perm, dtype=np.uint64)
    out = np.full((len(sigs), cfg.num_perm), _PRIME, dtype=np.uint32)
    for i, sig in enumerate(sigs):
        if sig.shingles.size:
            x = sig.shingles.astype(np.uint64)
            out[i] = ((a[:, None] * x[None, :] + b[:, None]) % _PRIME).min(axis=1)
    return out


def containment(a: np.ndarray, b: np.ndarray) -> float:
    """|A ∩ B| / min(|A|, |B|) of two shingle arrays (0 when either is empty)."""
    if not a.size or not b.size:
        return 0.0
    common = np.intersect1d(a, b, assume_unique=True).size
    return float(common / min(a.size, b.size))


@dataclass(frozen=True)
class Match:
    """Why two items are in one group."""

    a: str
    b: str
    via: str
    containment: float


def find_matches(sigs: Sequence[Signature], cfg: DedupeConfig) -> list[Match]:
    """Every duplicate pair found: exact, identity, and near (LSH candidates over the threshold)."""
    matches: list[Match] = []
    for via, key in (("exact", lambda s: s.sha256), ("identity", lambda s: s.identity)):
        buckets: dict[str, list[str]] = {}
        for s in sigs:
            if key(s):
                buckets.setdefault(key(s), []).append(s.id)
        for ids in buckets.values():
            first, *rest = sorted(ids)
            matches.extend(Match(first, other, via, 1.0) for other in rest)
    usable = [s for s in sigs if len(s.shingles) >= cfg.min_shingles]
    if len(usable) < 2:
        return matches
    table = minhashes(usable, cfg)
    rows = cfg.num_perm // cfg.bands
    candidates: set[tuple[int, int]] = set()
    for band in range(cfg.bands):
        buckets_i: dict[bytes, list[int]] = {}
        chunk = np.ascontiguousarray(table[:, band * rows : (band + 1) * rows])
        for i in range(len(usable)):
            buckets_i.setdefault(chunk[i].tobytes(), []).append(i)
        for members in buckets_i.values():
            if 1 < len(members) <= 200:  # a huge bucket is a degenerate signature, not duplicates
                for x in range(len(members)):
                    for y in range(x + 1, len(members)):
                        candidates.add((members[x], members[y]))
    for i, j in sorted(candidates):
        c = containment(usable[i].shingles, usable[j].shingles)
        if c >= cfg.threshold:
            a, b = sorted((usable[i].id, usable[j].id))
            matches.append(Match(a, b, "near", round(c, 4)))
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
    sigs = []
    by_id: dict[str, Mapping[str, Any]] = {}
    for row, score in items:
        sigs.append(signature(score, row, cfg))
        by_id[row["id"]] = {k: row[k] for k in ("id", "corpus", "rel_path", "item")}
        if on_done:
            on_done(1)
    matches = find_matches(sigs, cfg)
    canonical = group(sigs, matches)
    via: dict[str, tuple[str, float]] = {}
    for m in matches:
        for x in (m.a, m.b):
            if x not in via or m.containment > via[x][1]:
                via[x] = (m.via, m.containment)
    decisions = []
    groups = []
    for item_id in sorted(canonical):
        keep = canonical[item_id]
        how, score_c = via.get(item_id, ("", 0.0))
        groups.append({"id": item_id, "group": keep, "via": how, "containment": score_c})
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


def write_groups(groups: Sequence[Mapping[str, Any]], path: Any) -> None:
    """Write the item -> group table (the shard stage splits by group)."""
    write_table_atomic(pa.Table.from_pylist(list(groups), schema=GROUPS_SCHEMA), path)
