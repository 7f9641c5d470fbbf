from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.containment_join import containment, containment_pairs

SETS = st.lists(
    st.lists(st.integers(0, 60), max_size=30).map(
        lambda xs: np.array(sorted(set(xs)), dtype=np.uint32)
    ),
    min_size=2,
    max_size=25,
)


def brute_force(
    sets: list[np.ndarray], threshold: float, labels: list[int] | None = None
) -> list[tuple[int, int, float]]:
    return [
        (i, j, containment(sets[i], sets[j]))
        for i, j in itertools.combinations(range(len(sets)), 2)
        if containment(sets[i], sets[j]) >= threshold and (labels is None or labels[i] != labels[j])
    ]


@settings(max_examples=200, deadline=None)
@given(SETS, st.sampled_from([0.3, 0.5, 0.6, 7 / 12, 0.75, 0.9, 1.0]), st.data())
def test_the_join_finds_exactly_the_pairs_a_comparison_of_every_pair_finds(
    sets: list[np.ndarray], threshold: float, data: st.DataObject
) -> None:
    assert containment_pairs(sets, threshold) == brute_force(sets, threshold)
    labels = data.draw(st.lists(st.integers(0, 2), min_size=len(sets), max_size=len(sets)))
    got = containment_pairs(sets, threshold, np.array(labels))
    assert got == brute_force(sets, threshold, labels)


def test_a_pair_lsh_misses_is_found() -> None:
    # A short set inside a long one: containment 0.8 but Jaccard 16 / 404 = 0.04, so that
    # MinHash signatures in 32 bands of 4 rows (what dedupe used) collide in some band with
    # probability 8e-5.
    rng = np.random.default_rng(7)
    long = np.unique(rng.integers(0, 1 << 31, size=400)).astype(np.uint32)
    short = np.sort(np.concatenate([long[::25], rng.integers(1 << 31, 1 << 32, 4)])).astype(
        np.uint32
    )
    others = [np.unique(rng.integers(0, 1 << 31, size=200)).astype(np.uint32) for _ in range(50)]
    pairs = containment_pairs([*others, long, short], 0.6)
    assert [(i, j) for i, j, _ in pairs] == [(50, 51)]
    assert pairs[0][2] == pytest.approx(0.8)


def test_chunked_expansion_gives_the_same_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    base = [np.unique(rng.integers(0, 300, size=40)).astype(np.uint32) for _ in range(60)]
    whole = containment_pairs(base, 0.3)
    monkeypatch.setattr("pipeline.containment_join.EXPANSION_CHUNK", 7)
    assert containment_pairs(base, 0.3) == whole
    assert whole  # the sets overlap enough for pairs at 0.3


def test_a_bad_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        containment_pairs([np.zeros(1, np.uint32)] * 2, 0.0)
