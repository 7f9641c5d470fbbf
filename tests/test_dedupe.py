from __future__ import annotations

import random
from fractions import Fraction as F
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.score import Meter, Note, Score, ScoreMeta, bars_from_meters
from pipeline.stages.dedupe import DedupeConfig, containment, identity_hash, run, shingles

CFG = DedupeConfig()


def tune(
    seed: int, length: int = 64, transpose: int = 0, scale: F = F(1)
) -> list[tuple[F, int, F]]:
    rng = random.Random(seed)
    notes, t = [], F(0)
    for _ in range(length):
        d = rng.choice([F(1, 2), F(1), F(1, 4), F(3, 2)])
        notes.append((t * scale, 60 + rng.randint(-7, 12) + transpose, d * scale))
        notes.append((t * scale, 45 + rng.randint(-5, 5) + transpose, d * scale))
        t += d
    return notes


def score(sid: str, notes: list[tuple[F, int, F]]) -> Score:
    end = max(o + d for o, _, d in notes)
    bars = bars_from_meters([Meter(4, 4)] * (int(end // 4) + 1))
    return Score(ScoreMeta(sid), tuple(sorted(Note(o, p, d) for o, p, d in notes)), bars).validate()


def row(s: Score, priority: int = 10, sha: str | None = None) -> dict[str, Any]:
    return {"id": s.meta.id, "corpus": s.meta.id.split("/")[0], "rel_path": s.meta.id, "item": None,
            "sha256": sha or s.meta.id, "priority": priority}  # fmt: skip


def test_identity_ignores_transposition_and_tempo_scale() -> None:
    base = identity_hash(score("a", tune(1)))
    assert identity_hash(score("b", tune(1, transpose=5))) == base
    assert identity_hash(score("c", tune(1, scale=F(2)))) == base
    assert identity_hash(score("d", tune(2))) != base


def test_repeats_and_small_edits_are_near_duplicates() -> None:
    a = tune(3)
    repeated = a + [(o + 200, p, d) for o, p, d in a[:60]]  # a repeated section written out
    edited = [(o, p + (1 if i % 37 == 0 else 0), d) for i, (o, p, d) in enumerate(a)]
    sa, sr, se, other = (
        score("x/a", a),
        score("y/r", repeated),
        score("z/e", edited),
        score("w/o", tune(4)),
    )
    assert containment(shingles(sa, 5), shingles(sr, 5)) > 0.95
    assert containment(shingles(sa, 5), shingles(se, 5)) > 0.6
    assert containment(shingles(sa, 5), shingles(other, 5)) < 0.1
    scores = [sa, sr, se, other]
    decisions, groups, matches = run(
        [row(s, priority=p) for s, p in zip(scores, [5, 9, 1, 5], strict=True)], scores, CFG
    )
    status = {d.id: d.status for d in decisions}
    # The highest-priority member (y/r) is kept; the other two point to it; w/o stands alone.
    assert status == {"x/a": "duplicate_of:y/r", "z/e": "duplicate_of:y/r"}
    assert {g["id"]: g["group"] for g in groups}["w/o"] == "w/o"
    assert {m.via for m in matches} == {"near"}


def test_exact_bytes_group_even_without_notes() -> None:
    empty = Score(ScoreMeta("c/e1"), (), bars_from_meters([Meter(4, 4)]))
    twin = Score(ScoreMeta("b/e2"), (), bars_from_meters([Meter(4, 4)]))
    decisions, _, matches = run([row(empty, 1, "same"), row(twin, 2, "same")], [empty, twin], CFG)
    assert [(d.id, d.status) for d in decisions] == [("c/e1", "duplicate_of:b/e2")]
    assert matches[0].via == "exact"


@settings(max_examples=15, deadline=None)
@given(st.permutations(list(range(6))))
def test_result_does_not_depend_on_input_order(order: list[int]) -> None:
    base = [score(f"c{i}/s", tune(i % 3, transpose=i)) for i in range(6)]  # three transposed pairs
    rows = [row(s) for s in base]
    reference = run(rows, base, CFG)[0]
    shuffled = run([rows[i] for i in order], [base[i] for i in order], CFG)[0]
    assert shuffled == reference
    assert len(reference) == 3


def test_items_of_one_collection_file_are_not_exact_duplicates() -> None:
    a, b = score("book/t#X:1", tune(7)), score("book/t#X:2", tune(8))
    rows = [{**row(a, sha="one-file"), "item": "1"}, {**row(b, sha="one-file"), "item": "2"}]
    decisions, _, matches = run(rows, [a, b], CFG)
    assert decisions == [] and matches == []
