from __future__ import annotations

import random
from fractions import Fraction as F
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.readers import read_scores
from pipeline.score import Meter, Note, Score, ScoreMeta, bars_from_meters
from pipeline.stages.dedupe import (
    DedupeConfig,
    containment,
    identity_hash,
    run,
    shingles,
    whole_view,
)

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
    # A resolution past int64 (an extra note 1/(2**61 + 1) of a quarter in): Python-int columns.
    odd = (F(1, 2**61 + 1), 50, F(1))
    far = score("e", [*tune(1), odd])
    assert far.table.onset.dtype == object
    assert identity_hash(score("f", [*tune(1, transpose=3), (odd[0], 53, odd[2])])) == (
        identity_hash(far)
    )
    assert identity_hash(far) != base


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


def test_an_excerpt_of_a_long_piece_is_found_however_unlike_their_sizes() -> None:
    # 40 onsets of a 400-onset piece: containment 1 but Jaccard 0.036, so that MinHash/LSH (32
    # bands of 4 rows, as dedupe used) proposed this pair with probability 5e-5 (the code before
    # the exact join did not); the join cannot miss it.
    long = tune(11, length=400)
    excerpt = [(o - long[200][0], p, d) for o, p, d in long[200:240]]
    pieces = [score("a/long", long), score("b/excerpt", excerpt), score("c/other", tune(12))]
    decisions, _, matches = run([row(s) for s in pieces], pieces, CFG)
    assert [(m.a, m.b, m.via) for m in matches] == [("a/long", "b/excerpt", "near")]
    assert [(d.id, d.status) for d in decisions] == [("b/excerpt", "duplicate_of:a/long")]


def test_a_prelude_on_two_staves_matches_its_three_spine_edition(data_root: Path) -> None:
    # Sapp's kern keeps the prelude's two right-hand voices in two spines: three parts. The same
    # notes on two staves share only a third of the per-part shingles, all of the whole view's.
    three = read_scores(data_root / "sapp-chopin-preludes" / "prelude28-22.krn")[0]
    assert len({n.part for n in three.notes}) == 3
    two = three.replace(
        meta=ScoreMeta("other/prelude28-22.mxl"),
        notes=tuple(n._replace(part=min(n.part, 1)) for n in three.notes),
        parts=three.parts[:2],
    ).validate()
    assert containment(shingles(three, 5), shingles(two, 5)) < 0.4
    assert containment(whole_view(three, 5), whole_view(two, 5)) == 1.0
    pieces = [three.replace(meta=ScoreMeta("sapp/prelude28-22.krn")), two]
    decisions, groups, _ = run([row(pieces[0], 80), row(pieces[1], 50)], pieces, CFG)
    assert [(d.id, d.status) for d in decisions] == [
        ("other/prelude28-22.mxl", "duplicate_of:sapp/prelude28-22.krn")
    ]
    assert {g["containment"] for g in groups} == {1.0}


def test_a_declared_work_groups_files_whose_music_differs() -> None:
    early, late, other = tune(21), tune(22), tune(23)  # unrelated notes: no musical match
    pieces = [score("ed1/op50-3", early), score("ed2/op50-3", late), score("ed2/op50-2", other)]
    rows = [
        {**row(pieces[0], 60), "work": "Chopin/op50/3"},
        {**row(pieces[1], 70), "work": "Chopin/op50/3"},
        {**row(pieces[2], 70), "work": "Chopin/op50/2"},
    ]
    decisions, groups, matches = run(rows, pieces, CFG)
    assert [(m.a, m.b, m.via) for m in matches] == [("ed1/op50-3", "ed2/op50-3", "work")]
    assert matches[0].containment < 0.2  # how unlike the two editions are: shown in the ledger
    assert [(d.id, d.status) for d in decisions] == [("ed1/op50-3", "duplicate_of:ed2/op50-3")]
    assert decisions[0].detail.startswith("work 0.")
    by_id = {g["id"]: g for g in groups}
    assert by_id["ed1/op50-3"]["work"] == "Chopin/op50/3"
    assert by_id["ed2/op50-2"]["group"] == "ed2/op50-2"
