"""Every metric against a value worked out by hand on a tiny score (the arithmetic is in the comments)."""

from __future__ import annotations

import math
from fractions import Fraction as F

import numpy as np
import pytest

from gnm_model import metrics as m
from pipeline.score import Meter, Note, Score, ScoreMeta, bars_from_meters
from tests.helpers import m21_path, read_one


def score(notes: list[tuple[F | int, int, F | int]], meters: list[Meter]) -> Score:
    return Score(
        ScoreMeta("t"),
        tuple(sorted(Note(F(o), p, F(d)) for o, p, d in notes)),
        bars_from_meters(meters),
    ).validate()


Q44 = Meter(4, 4)
Q34 = Meter(3, 4)
# Two 4/4 bars. Bar 1: C4 E4 G4 C5 on beats 1-4. Bar 2: C4+E4 chord on beat 1 (a half), G4 on beat 3.
TWO_BARS = score(
    [(0, 60, 1), (1, 64, 1), (2, 67, 1), (3, 72, 1), (4, 60, 2), (4, 64, 2), (6, 67, 1)], [Q44, Q44]
)


def test_pitch_class_entropy_by_hand() -> None:
    # 7 notes: C (60, 72, 60) 3, E (64, 64) 2, G (67, 67) 2.
    p = np.array([3, 2, 2]) / 7
    assert m.pitch_class_entropy(TWO_BARS) == pytest.approx(-(p * np.log2(p)).sum())
    assert math.isnan(m.pitch_class_entropy(score([], [Q44])))
    one_class = score([(0, 60, 1), (1, 72, 1)], [Q44])
    assert m.pitch_class_entropy(one_class) == 0.0


def test_windowed_entropy_by_hand() -> None:
    # Bar 1: C, E, G, C -> p = (1/2, 1/4, 1/4): 1.5 bits. Bar 2: C, E, G -> log2(3) bits.
    assert m.windowed_pitch_class_entropy(TWO_BARS, 1) == pytest.approx((1.5 + math.log2(3)) / 2)
    # One 2-bar window = the whole piece.
    assert m.windowed_pitch_class_entropy(TWO_BARS, 2) == pytest.approx(
        m.pitch_class_entropy(TWO_BARS)
    )
    assert math.isnan(m.windowed_pitch_class_entropy(TWO_BARS, 4))  # no 4-bar window


def test_groove_consistency_and_similarity_by_hand() -> None:
    # 48 ticks per bar. Onsets bar 1: 0, 12, 24, 36; bar 2: 0, 24 -> they differ at 12 and 36: d = 2.
    assert m.groove_consistency(TWO_BARS) == pytest.approx(1 - 2 / 48)
    assert m.groove_similarity(TWO_BARS) == pytest.approx(1 - 2 / 48)
    # Mixed meters: a 3/4 bar (36 ticks) with onsets 0, 12 after bar 1 -> padded to 48: differ at 24, 36.
    mixed = score(
        [(0, 60, 1), (1, 64, 1), (2, 67, 1), (3, 72, 1), (4, 60, 1), (5, 62, 1)], [Q44, Q34]
    )
    assert m.groove_consistency(mixed) == pytest.approx(1 - 2 / 48)
    # Three bars: pairs (1,2) d=2, (1,3) d=0, (2,3) d=2 -> adjacent mean 1 - 4/96, all pairs mean of 1-2/48, 1, 1-2/48.
    three = score([(0, 60, 1), (1, 64, 1), (2, 67, 1), (3, 72, 1), (4, 60, 2), (6, 67, 1),
                   (8, 60, 1), (9, 64, 1), (10, 67, 1), (11, 72, 1)], [Q44] * 3)  # fmt: skip
    assert m.groove_consistency(three) == pytest.approx(1 - 4 / 96)
    assert m.groove_similarity(three) == pytest.approx((2 * (1 - 2 / 48) + 1) / 3)
    assert math.isnan(m.groove_consistency(score([(0, 60, 1)], [Q44])))


def test_scale_consistency_pitch_range_and_polyphony_by_hand() -> None:
    assert m.scale_consistency(TWO_BARS) == 1.0  # C, E, G are in C major
    chromatic = score([(i, 60 + i, 1) for i in range(4)], [Q44])  # C C# D D#
    assert m.scale_consistency(chromatic) == pytest.approx(3 / 4)  # e.g. C minor holds C, D, D#
    assert m.pitch_range(TWO_BARS) == 12 and m.pitch_range(score([], [Q44])) == 0
    # Ticks with sound: 0-47 one pitch each (48 ticks of 1); 48-71 two pitches; 72-83 one -> (48 + 48 + 12) / 84.
    assert m.polyphony(TWO_BARS) == pytest.approx((48 * 1 + 24 * 2 + 12 * 1) / 84)


def test_empty_beat_rate_by_hand() -> None:
    # Beats 0-7; notes cover beats 0-3, 4-5 (the half notes), 6 -> beat 7 is empty: 1/8.
    assert m.empty_beat_rate(TWO_BARS) == pytest.approx(1 / 8)
    # A note from 0.5 to 1.5 touches beats 0 and 1 only.
    assert m.empty_beat_rate(score([(F(1, 2), 60, 1)], [Q44])) == pytest.approx(2 / 4)


def test_ngram_repetition_by_hand() -> None:
    # A motif of 3 intervals played twice, a fifth higher: (+2, 12, 12) (+2, 12, 12) then a jump, then again.
    notes = [(0, 60, 1), (1, 62, 1), (2, 64, 1), (3, 67, 1), (4, 69, 1), (5, 71, 1)]
    s = score(notes, [Q44, Q44])
    # Events: (+2,12,12) (+2,12,12) (+3,12,12) (+2,12,12) (+2,12,12); 2-grams: A A, A B, B A, A A -> 1 repeat of 4.
    assert m.ngram_repetition_rate(s, 2) == pytest.approx(1 / 4)
    assert math.isnan(m.ngram_repetition_rate(s, 6))


def test_bar_self_similarity_and_structure_by_hand() -> None:
    # Bars: A B A B where A = {C4 quarter at 0}, B = {D4 quarter at 0, E4 at 12}.
    a, b = [(0, 60, 1)], [(0, 62, 1), (1, 64, 1)]
    notes = [(4 * i + o, p, d) for i, bar in enumerate([a, b, a, b]) for o, p, d in bar]
    s = score(notes, [Q44] * 4)
    matrix = m.bar_self_similarity(s)
    assert (
        np.allclose(np.diag(matrix), 1)
        and matrix[0, 2] == 1
        and matrix[1, 3] == 1
        and matrix[0, 1] == 0
    )
    scores = m.structure_scores(matrix)
    assert scores["short"] == 1.0  # distance 2: A-A and B-B
    assert scores["mid"] == 0.0  # distance 3: A-B
    assert math.isnan(scores["long"])


def test_overlapping_area() -> None:
    assert m.overlapping_area([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0, abs=1e-3)
    assert m.overlapping_area([0, 0.1], [10, 10.1]) == pytest.approx(0.0, abs=1e-6)
    assert m.overlapping_area([1.0, math.nan], [1.0]) == 1.0
    assert math.isnan(m.overlapping_area([math.nan], [1.0]))
    assert m.overlapping_area([0.0, 0.0], [0.0, 1.0]) < m.overlapping_area([0.0, 1.0], [0.0, 1.0])


def test_overlapping_area_of_two_small_draws_of_one_distribution_is_high() -> None:
    """The evaluation's sample sizes: 20 against 30 values. Histograms gave about 0.3 here."""
    rng = np.random.default_rng(0)
    same = [m.overlapping_area(rng.normal(size=20), rng.normal(size=30)) for _ in range(50)]
    shifted = [
        m.overlapping_area(rng.normal(size=20), rng.normal(2, 1, size=30)) for _ in range(50)
    ]
    assert np.mean(same) > 0.75 and np.mean(shifted) < 0.5  # true overlaps: 1.0 and 0.32
    assert all(0.0 <= v <= 1.0 for v in same + shifted)
    saturated = m.overlapping_area([1.0] * 32, [1.0] * 28 + [0.97] * 4)  # 7/8 of the mass coincides
    assert saturated > 0.6


def test_real_pieces_have_plausible_values() -> None:
    chorale = read_one(m21_path("bach/bwv66.6.mxl"))
    values = m.all_metrics(chorale)
    assert 2.5 < values["pitch_class_entropy"] < 3.585  # below log2(12)
    assert values["scale_consistency"] > 0.9 and 3.0 < values["polyphony"] <= 4.0
    assert 0 <= values["empty_beat_rate"] < 0.05 and 0.5 < values["groove_consistency"] <= 1
