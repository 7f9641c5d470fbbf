from __future__ import annotations

from fractions import Fraction as F

import pytest

from pipeline.errors import ScoreValidationError
from pipeline.score import Bar, Meter, Note, Part, Score, ScoreMeta, TempoChange, bars_from_meters


def make(notes: list[Note], bars: tuple[Bar, ...] | None = None, **kw: object) -> Score:
    return Score(
        ScoreMeta("t"),
        tuple(notes),
        bars if bars is not None else bars_from_meters([Meter(4, 4)] * 2),
        **kw,
    )  # type: ignore[arg-type]


def test_valid_score_passes_and_derived_views() -> None:
    s = make(
        [Note(F(0), 60, F(1)), Note(F(1, 3), 64, F(2))], tempos=(TempoChange(F(0), 90.0),)
    ).validate()
    assert s.end == F(8)
    assert s.tempo == 90.0
    assert s.meters() == ["4/4", "4/4"]
    assert s.note_keys() == [(F(0), 60, F(1)), (F(1, 3), 64, F(2))]


@pytest.mark.parametrize(
    ("notes", "message"),
    [
        ([Note(F(1), 60, F(1)), Note(F(0), 60, F(1))], "not sorted"),
        ([Note(F(-1), 60, F(1))], "negative onset"),
        ([Note(F(0), 60, F(0))], "non-positive duration"),
        ([Note(F(0), 128, F(1))], "pitch 128"),
        ([Note(F(0), 60, F(1), velocity=0)], "velocity"),
        ([Note(F(0), 60, F(1), part=3)], "part 3"),
        ([Note(F(8), 60, F(1))], "after the last bar"),
    ],
)
def test_invalid_notes_are_named(notes: list[Note], message: str) -> None:
    with pytest.raises(ScoreValidationError, match=message):
        make(notes).validate()


def test_bars_must_be_contiguous_from_zero() -> None:
    gap = (Bar(F(0), F(4), Meter(4, 4)), Bar(F(5), F(4), Meter(4, 4)))
    with pytest.raises(ScoreValidationError, match="contiguous"):
        make([], gap).validate()
    late = (Bar(F(1), F(4), Meter(4, 4)),)
    with pytest.raises(ScoreValidationError, match="contiguous"):
        make([], late).validate()


def test_only_the_first_bar_may_be_a_pickup() -> None:
    bars = (Bar(F(0), F(4), Meter(4, 4)), Bar(F(4), F(1), Meter(4, 4), pickup=True))
    with pytest.raises(ScoreValidationError, match="pickup"):
        make([], bars).validate()


def test_notes_need_bars_and_tempi_must_be_positive() -> None:
    with pytest.raises(ScoreValidationError, match="no bars"):
        make([Note(F(0), 60, F(1))], ()).validate()
    with pytest.raises(ScoreValidationError, match="BPM"):
        make([], tempos=(TempoChange(F(0), 0.0),)).validate()


def test_replace_sorts_notes_and_with_counts_adds() -> None:
    s = make([]).replace(notes=[Note(F(2), 60, F(1)), Note(F(0), 62, F(1))]).with_counts({"a": 1})
    assert [n.onset for n in s.notes] == [F(0), F(2)]
    assert s.with_counts({"a": 2, "b": 1}).report == {"a": 3, "b": 1}
    assert s.parts == (Part(0),)


def test_meter_parse_and_length() -> None:
    assert Meter.parse("6/8").length == F(3)
    assert str(Meter.parse(" 12/8 ")) == "12/8"
    with pytest.raises(ValueError, match="not a meter"):
        Meter.parse("4-4")
