"""The note table: tick columns at an exact resolution, and the same notes as `Note` objects."""

from __future__ import annotations

import math
from fractions import Fraction as F

import numpy as np
import pytest

from pipeline.notes import Note, NoteTable, divide, tables_from_fractions, to_fractions
from pipeline.score import Bar, Meter, Part, Score, ScoreMeta

NOTES = (
    Note(F(0), 60, F(1, 3)),
    Note(F(1, 3), 62, F(1, 3), 90, 1),
    Note(F(5, 4), 64, F(3, 4)),
)


def test_columns_from_notes_use_the_least_common_denominator() -> None:
    table = NoteTable.of(NOTES)
    assert table.resolution == 12
    assert table.onset.tolist() == [0, 4, 15]
    assert table.duration.tolist() == [4, 4, 9]
    assert table.velocity.tolist() == [80, 90, 80]
    assert table.part.tolist() == [0, 1, 0]


def test_notes_from_columns_round_trip() -> None:
    table = NoteTable.of(NOTES)
    again = NoteTable(*table.columns(), table.resolution)
    assert again.objects() == NOTES
    assert again == NOTES  # a table equals the sequence of its notes
    assert again.at(48) == table  # and a table of the same notes at another resolution
    assert again[1] == NOTES[1] and again[1:] == NOTES[1:] and len(again) == 3


def test_at_refuses_a_resolution_that_is_not_a_multiple() -> None:
    with pytest.raises(ValueError, match="not a multiple"):
        NoteTable.of(NOTES).at(18)


def test_sorted_is_the_order_of_note_tuples() -> None:
    shuffled = (NOTES[2], NOTES[0], Note(F(0), 60, F(1, 3), 70), NOTES[1])
    table = NoteTable.of(shuffled)
    columns = NoteTable(*table.columns(), table.resolution)
    assert columns.unsorted_at() == 1
    assert columns.sorted().objects() == tuple(sorted(shuffled))


def test_huge_denominators_fall_back_to_python_integers() -> None:
    big = 2**61 + 1  # odd: its least common multiple with 4 overflows int64
    notes = (Note(F(1, big), 60, F(1, 4)), Note(F(2, 3), 61, F(1, 4)))
    table = NoteTable.of(notes)
    assert table.onset.dtype == object
    assert table.resolution == math.lcm(big, 3, 4) > 2**62
    assert table.objects() == notes
    assert table.sorted().objects() == notes


def test_divide_rounds_like_python() -> None:
    ticks = np.array([1, 2, 3, 2**60 + 1], dtype=object)
    assert divide(ticks, 3).tolist() == [1 / 3, 2 / 3, 1.0, (2**60 + 1) / 3]
    assert divide(np.array([7, 9]), 12).tolist() == [float(F(7, 12)), float(F(9, 12))]


def test_to_fractions_reduces() -> None:
    num, den = to_fractions(np.array([0, 6, 8]), 12)
    assert num.tolist() == [0, 1, 2] and den.tolist() == [1, 2, 3]


def _fraction_columns(notes: tuple[Note, ...]) -> list[np.ndarray]:
    return [
        np.array(values, dtype=np.int64)
        for values in zip(
            *(
                (n.onset.numerator, n.onset.denominator, n.pitch, n.duration.numerator,
                 n.duration.denominator, n.velocity, n.part)
                for n in notes
            ),
            strict=True,
        )
    ]  # fmt: skip


def test_tables_from_fractions_matches_one_table_per_run() -> None:
    runs = [NOTES, (Note(F(1, 5), 40, F(2)),), NOTES[:1]]
    flat = tuple(n for run in runs for n in run)
    bounds = [0, 3, 4, 5]
    tables = tables_from_fractions(_fraction_columns(flat), bounds)
    assert [t.objects() for t in tables] == runs
    assert [t.resolution for t in tables] == [12, 5, 3]
    assert tables_from_fractions(_fraction_columns(flat), [0]) == []


def test_tables_from_fractions_converts_a_huge_run_on_its_own() -> None:
    big = 2**40 + 1
    columns = [
        np.array(c) for c in zip((1, big, 60, 1, 1, 80, 0), (1, 2, 62, 1, 2, 80, 0), strict=True)
    ]
    first, second = tables_from_fractions(columns, [0, 1, 2])
    assert first.resolution == big and first.objects() == (Note(F(1, big), 60, F(1)),)
    assert second.resolution == 2 and second.objects() == (Note(F(1, 2), 62, F(1, 2)),)


def test_score_validation_names_the_first_bad_note() -> None:
    bars = (Bar(F(0), F(4), Meter(4, 4)),)
    parts = (Part(0), Part(1))
    ok = Score(ScoreMeta("x"), NOTES, bars, parts).validate()
    assert ok.table.resolution == 12 and ok.end == F(4)
    bad = Score(ScoreMeta("x"), (NOTES[0], Note(F(1, 3), 128, F(1))), bars, parts)
    with pytest.raises(Exception, match="pitch 128 outside 0-127 at onset 1/3"):
        bad.validate()
    unsorted = Score(ScoreMeta("x"), (NOTES[1], NOTES[0]), bars, parts)
    with pytest.raises(Exception, match="not sorted at onset 0"):  # the second note's onset
        unsorted.validate()
    late = Score(ScoreMeta("x"), (Note(F(4), 60, F(1)),), bars)
    with pytest.raises(Exception, match="note onset 4 lies after the last bar"):
        late.validate()


def test_tables_from_fractions_knows_which_runs_are_sorted() -> None:
    unsorted = (NOTES[1], NOTES[0], NOTES[2])
    flat = (*NOTES, *unsorted, NOTES[2], NOTES[0])  # the last run descends at its border only
    tables = tables_from_fractions(_fraction_columns(flat), [0, 3, 6, 7, 8])
    assert [t.unsorted_at() for t in tables] == [None, 1, None, None]
    assert tables[1].sorted().objects() == NOTES
