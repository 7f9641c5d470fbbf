from __future__ import annotations

from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.music.meter import normalize_meters
from pipeline.music.quantize import QuantizeConfig, off_grid_reason, quantize, snap
from pipeline.score import Meter, Note, Score, ScoreMeta, bars_from_meters
from tests.helpers import m21_path, read_one


def score_of(notes: list[tuple[F, int, F]], bars: int = 4) -> Score:
    return Score(
        ScoreMeta("q"),
        tuple(sorted(Note(o, p, d) for o, p, d in notes)),
        bars_from_meters([Meter(4, 4)] * bars),
    ).validate()


def test_snap_rounds_half_up() -> None:
    assert snap(F(1, 24), 12) == 1  # half a tick -> up
    assert snap(F(1, 25), 12) == 0
    assert snap(F(3, 8), 12) == 5  # 4.5 ticks -> 5


def test_grid_values_survive_and_off_grid_values_move_with_reasons() -> None:
    s = score_of(
        [
            (F(0), 60, F(1)),  # on grid
            (F(1, 3), 62, F(1, 3)),  # triplet: on a grid of 12
            (F(1, 8), 64, F(1, 8)),  # 32nd: finer than 12
            (F(2, 5), 65, F(1, 5)),  # quintuplet: a tuplet the grid cannot hold
        ]
    )
    q, stats = quantize(s)
    assert q.note_keys() == [
        (F(0), 60, F(1)),
        (F(1, 6), 64, F(1, 12)),
        (F(1, 3), 62, F(1, 3)),
        (F(5, 12), 65, F(1, 6)),
    ]
    assert stats.notes_moved == 2 and stats.onsets_moved == 2
    assert stats.moved_finer_value == 1 and stats.moved_tuplet == 1
    assert stats.onset_error_max == pytest.approx(0.5)  # 1.5 ticks -> 2 ticks
    assert stats.share_moved == 0.5
    assert q.report["notes_moved"] == 2


def test_zero_length_becomes_one_tick() -> None:
    s = score_of([(F(0), 60, F(1, 100))])
    q, stats = quantize(s)
    assert q.notes[0].duration == F(1, 12) and stats.zero_length_extended == 1


def test_resolution_24_keeps_32nd_notes() -> None:
    s = score_of([(F(1, 8), 64, F(1, 8)), (F(3, 8), 65, F(1, 8))])
    q, stats = quantize(s, QuantizeConfig(24))
    assert q.note_keys() == s.note_keys() and stats.notes_moved == 0
    with pytest.raises(ValueError, match="even"):
        QuantizeConfig(7)


def test_off_grid_reason() -> None:
    assert off_grid_reason(F(1, 8), 12) == "finer_value"
    assert off_grid_reason(F(1, 5), 12) == "tuplet"
    assert off_grid_reason(F(1, 7), 24) == "tuplet"


def test_real_32nd_note_passage_moves_at_12_but_not_at_24() -> None:
    s = normalize_meters(read_one(m21_path("mozart/k458/movement3.mxl")))
    _, at12 = quantize(s, QuantizeConfig(12))
    _, at24 = quantize(s, QuantizeConfig(24))
    assert at12.moved_finer_value > 100
    assert at24.notes_moved < at12.notes_moved / 10


@pytest.mark.corpus
@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.fractions(0, 15, max_denominator=64),
            st.integers(21, 108),
            st.fractions(F(1, 64), 4, max_denominator=64),
        ),
        max_size=30,
    ),
    st.sampled_from([12, 24, 48]),
)
def test_quantising_twice_equals_once(raw: list[tuple[F, int, F]], resolution: int) -> None:
    s = score_of(raw)
    once, _ = quantize(s, QuantizeConfig(resolution))
    twice, stats = quantize(once, QuantizeConfig(resolution))
    assert twice.notes == once.notes and stats.notes_moved == 0
    assert all(
        (n.onset * resolution).denominator == 1 and n.duration >= F(1, resolution)
        for n in once.notes
    )


@pytest.mark.parametrize("name", ["mozart/k458/movement3.mxl", "beethoven/opus59no1/movement3.mxl"])
def test_32nd_note_passages_survive_at_24_and_move_at_12(name: str) -> None:
    from pipeline.tokenizer import Tokenizer, Vocab, VocabConfig

    s = normalize_meters(read_one(m21_path(name)))
    # 32nd notes: a 32nd-note duration, or an onset on the 32nd grid but off the 16th grid with
    # a duration on the 32nd grid (Beethoven's 64th-note turns need 48 per quarter).
    thirty_seconds = {
        (n.onset, n.pitch, n.duration)
        for n in s.notes
        if (n.duration * 8).denominator == 1
        and (n.duration == F(1, 8) or (n.onset * 4).denominator == 2)
        and (n.onset * 8).denominator == 1
    }
    assert len(thirty_seconds) > 50

    def keys(score: object) -> set[tuple[F, int, F]]:
        return {(n.onset, n.pitch, n.duration) for n in score.notes}  # type: ignore[attr-defined]

    q12, _ = quantize(s, QuantizeConfig(12))
    q24, _ = quantize(s, QuantizeConfig(24))
    assert thirty_seconds <= keys(q24)  # every one kept exactly
    assert len(thirty_seconds - keys(q12)) == len(thirty_seconds)  # every one moved
    tokenizer24 = Tokenizer(Vocab(VocabConfig(resolution=24)))
    assert thirty_seconds <= keys(tokenizer24.decode(tokenizer24.encode(q24)))
