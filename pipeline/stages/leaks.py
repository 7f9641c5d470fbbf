"""The shard stage's safety net: no work and no near-duplicate in two splits.

Dedupe puts every file of a declared work and every near-duplicate pair into one group, and the
shard stage gives a group one split, so nothing should leak. This checks the rows about to be
written, independently of how dedupe found its groups: two rows in different splits that share a
declared work key, or whose tokens are near-duplicates (the whole view of `pipeline.shingles`,
the top and bass lines of the notes the tokens hold, with dedupe's `ngram`, `min_shingles` and
`threshold`), make the stage refuse to write, naming both rows. Every pair over the threshold is
found (`pipeline.containment_join`, restricted to pairs in different splits).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pipeline.containment_join import containment_pairs
from pipeline.errors import GnmError
from pipeline.shingles import whole_shingles
from pipeline.stages.dedupe import DedupeConfig
from pipeline.tokenizer.decode import NoteOnsets
from pipeline.tokenizer.grammar import Grammar
from pipeline.tokenizer.vocab import Vocab

SHOWN = 5  # leaks named in the error message (all are counted)


@dataclass(frozen=True)
class Leak:
    """Two rows in different splits that are one work or near-duplicates."""

    a: str
    split_a: str
    b: str
    split_b: str
    why: str  # `work <key>` or `near-duplicates (containment <c>)`

    def __str__(self) -> str:
        return f"{self.a} ({self.split_a}) and {self.b} ({self.split_b}): {self.why}"


@dataclass(frozen=True)
class Row:
    """What the check needs of one shard row."""

    id: str
    split: str
    work: str | None
    shingles: np.ndarray  # whole view of its tokens' notes


def work_leaks(rows: Sequence[Row]) -> list[Leak]:
    """Rows that share a work key but not a split (each split's first row against the first's)."""
    by_work: dict[str, dict[str, str]] = {}
    for row in sorted(rows, key=lambda r: r.id):
        if row.work:
            by_work.setdefault(row.work, {}).setdefault(row.split, row.id)
    leaks: list[Leak] = []
    for work, firsts in sorted(by_work.items()):
        (split_a, a), *others = sorted(firsts.items(), key=lambda kv: kv[1])
        leaks.extend(Leak(a, split_a, b, split_b, f"work {work}") for split_b, b in others)
    return leaks


def near_leaks(rows: Sequence[Row], cfg: DedupeConfig) -> list[Leak]:
    """Pairs of rows in different splits whose containment reaches `cfg.threshold`."""
    usable = [r for r in rows if r.shingles.size >= cfg.min_shingles]
    names = sorted({r.split for r in usable})
    labels = np.array([names.index(r.split) for r in usable], dtype=np.int64)
    pairs = containment_pairs([r.shingles for r in usable], cfg.threshold, labels)
    return [
        Leak(
            usable[i].id,
            usable[i].split,
            usable[j].id,
            usable[j].split,
            f"near-duplicates (containment {c:.2f} >= dedupe.threshold {cfg.threshold})",
        )
        for i, j, c in pairs
    ]


def token_rows(
    tokens_path: Path,
    split_of_id: Mapping[str, str],
    works: Mapping[str, str | None],
    vocab: Vocab,
    ngram: int,
) -> Iterable[Row]:
    """The check's view of each row of tokens.parquet (`split_of_id` gives every row's split)."""
    onsets = NoteOnsets(Grammar(vocab))
    for batch in pq.ParquetFile(tokens_path).iter_batches(columns=["id", "tokens"]):
        ids = batch.column(0).to_pylist()
        sequences = batch.column(1)
        for k, item in enumerate(ids):
            ticks, pitches = onsets(sequences[k].values.to_numpy())
            yield Row(
                item, split_of_id[item], works.get(item), whole_shingles(ticks, pitches, ngram)
            )


def refuse_leaks(rows: Sequence[Row], cfg: DedupeConfig, source: str) -> None:
    """GnmError naming the leaking rows when any two rows in different splits are one work or alike."""
    leaks = work_leaks(rows) + near_leaks(rows, cfg)
    if not leaks:
        return
    shown = "; ".join(str(leak) for leak in leaks[:SHOWN])
    more = f" (and {len(leaks) - SHOWN} more)" if len(leaks) > SHOWN else ""
    raise GnmError(
        f"{source}: refusing to write shards: {len(leaks)} pair(s) of rows in different splits "
        f"would leak a work: {shown}{more}. Dedupe should have grouped each pair: declare them "
        "one work (work_pattern in their corpus declarations), or check that the dedupe "
        "and tokenize folders come from one build"
    )
