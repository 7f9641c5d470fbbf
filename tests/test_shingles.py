from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.shingles import part_shingles, piece_views, whole_shingles

NOTES = st.lists(
    st.tuples(st.integers(0, 40), st.integers(40, 80), st.integers(0, 2)), max_size=60
)  # (onset in eighths, pitch, part)


def ngrams(notes: list[tuple[int, int, int]], n: int, view: str) -> set[tuple[object, ...]]:
    """The distinct n-grams of a view, written out plainly (the definition the hashes stand for)."""
    lines: dict[object, dict[int, int]] = {}
    for onset, pitch, part in notes:
        keys = [("part", part)] if view == "parts" else [("top", 0), ("bass", 0)]
        for key in keys:
            line = lines.setdefault(key, {})
            pick = min if key[0] == "bass" else max
            line[onset] = pick(line.get(onset, pitch), pitch)
    out: set[tuple[object, ...]] = set()
    for (kind, _), line in lines.items():
        points = sorted(line.items())
        steps = [
            (p1 - p0, round(2 * math.log2((o2 - o1) / (o1 - o0))))
            for (o0, p0), (o1, p1), (o2, _) in zip(points, points[1:], points[2:], strict=False)
        ]
        out.update((kind, *steps[i : i + n]) for i in range(len(steps) - n + 1))
    return out


def view(notes: list[tuple[int, int, int]], n: int, kind: str) -> np.ndarray:
    onsets = np.array([o for o, _, _ in notes], dtype=np.float64)
    pitches = np.array([p for _, p, _ in notes], dtype=np.int64)
    if kind == "parts":
        return part_shingles(onsets, pitches, np.array([q for _, _, q in notes]), n)
    return whole_shingles(onsets, pitches, n)


@settings(max_examples=150, deadline=None)
@given(NOTES, NOTES, st.sampled_from(["parts", "whole"]), st.integers(2, 4))
def test_shingles_count_the_distinct_ngrams_of_each_line_and_their_overlap(
    a: list[tuple[int, int, int]], b: list[tuple[int, int, int]], kind: str, n: int
) -> None:
    sa, sb = view(a, n, kind), view(b, n, kind)
    assert np.all(np.diff(sa.astype(np.int64)) > 0)  # sorted and distinct
    assert sa.size == len(ngrams(a, n, kind))
    assert np.intersect1d(sa, sb).size == len(ngrams(a, n, kind) & ngrams(b, n, kind))


@settings(max_examples=50, deadline=None)
@given(NOTES, st.integers(-12, 12), st.sampled_from([1, 2, 3, 12]))
def test_shingles_ignore_transposition_note_values_and_for_the_whole_view_parts(
    notes: list[tuple[int, int, int]], shift: int, scale: int
) -> None:
    moved = [(o * scale, p + shift, q) for o, p, q in notes]
    for kind in ("parts", "whole"):
        assert np.array_equal(view(moved, 3, kind), view(notes, 3, kind))
    regrouped = [(o, p, (p + o) % 3) for o, p, _ in notes]  # the same notes on other staves
    assert np.array_equal(view(regrouped, 3, "whole"), view(notes, 3, "whole"))


@settings(max_examples=100, deadline=None)
@given(st.lists(NOTES, max_size=5), st.integers(2, 4))
def test_piece_views_give_each_piece_its_own_views(
    pieces: list[list[tuple[int, int, int]]], n: int
) -> None:
    """The batched views equal the views of each piece on its own (no shingle crosses pieces)."""
    flat = [note for notes in pieces for note in notes]
    owner = np.repeat(np.arange(len(pieces)), [len(notes) for notes in pieces])
    onsets = np.array([o for o, _, _ in flat], dtype=np.float64)
    pitches = np.array([p for _, p, _ in flat], dtype=np.int64)
    parts = np.array([q for _, _, q in flat], dtype=np.int64)
    by_part, whole = piece_views(owner, onsets, pitches, parts, n, len(pieces))
    assert [a.tolist() for a in by_part] == [view(notes, n, "parts").tolist() for notes in pieces]
    assert [a.tolist() for a in whole] == [view(notes, n, "whole").tolist() for notes in pieces]
