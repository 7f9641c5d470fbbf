"""The canonical score: every reader produces it, every stage transforms it, the tokenizer reads it.

Times are exact quarter-note rationals measured from the start of the first bar; nothing is
quantised here. Notes are a `NoteTable` (`pipeline.notes`): integer ticks at the score's own exact
resolution, which the transforms work on, also readable as a sequence of `Note` objects with
`Fraction` times. Bars and tempo changes, a few per score, are objects with `Fraction` times.
A score validates itself: notes sorted, times non-negative, durations positive, pitches 0-127,
bars contiguous from 0 and covering every onset.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from pipeline.errors import ScoreValidationError
from pipeline.notes import DEFAULT_VELOCITY, Note, NoteTable, fraction

DEFAULT_BPM = 120.0
# Note and NoteTable live in pipeline.notes; readers import them from here, with the score.
__all__ = ["DEFAULT_BPM", "DEFAULT_VELOCITY", "Bar", "Meter", "Note", "NoteTable", "Part", "Score", "ScoreMeta", "TempoChange", "bars_from_meters", "new_bar"]  # fmt: skip


@dataclass(frozen=True, slots=True, order=True)
class Meter:
    """A time signature `numerator/denominator`; `length` is the nominal bar length in quarters."""

    numerator: int
    denominator: int

    def __post_init__(self) -> None:
        if self.numerator <= 0 or self.denominator <= 0:
            raise ValueError(f"meter {self.numerator}/{self.denominator} must be positive")

    @property
    def length(self) -> Fraction:
        """Nominal bar length in quarter notes (6/8 -> 3)."""
        return _bar_length(self.numerator, self.denominator)

    @classmethod
    def parse(cls, text: str) -> Meter:
        """Parse `"n/d"` (e.g. `"6/8"`)."""
        return _parse_meter(text)

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@lru_cache(maxsize=1024)
def _bar_length(numerator: int, denominator: int) -> Fraction:
    """Shared: meter normalisation asks every bar's nominal length several times."""
    return Fraction(4 * numerator, denominator)


@lru_cache(maxsize=1024)
def _parse_meter(text: str) -> Meter:
    """Shared (meters are immutable): a score repeats a few meters over hundreds of bars."""
    try:
        num, den = text.strip().split("/")
        return Meter(int(num), int(den))
    except ValueError as exc:
        raise ValueError(f"not a meter: {text!r} (expected 'n/d', e.g. '3/4')") from exc


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: start and actual length in quarter notes, its meter, and whether it is a pickup.

    `length` may differ from `meter.length` (pickups, incomplete bars such as repeat halves,
    overfull cadenza bars); meter normalisation turns every bar into a full bar of a supported meter.
    """

    start: Fraction
    length: Fraction
    meter: Meter
    pickup: bool = False

    @property
    def end(self) -> Fraction:
        """Start of the next bar in quarter notes."""
        return self.start + self.length

    @property
    def complete(self) -> bool:
        """True when the bar is exactly as long as its meter says."""
        return self.length == self.meter.length


# Slot setters: a frozen dataclass's __init__ costs three times as much, for hundreds of bars.
_SET_BAR = tuple(Bar.__dict__[f].__set__ for f in ("start", "length", "meter", "pickup"))


def new_bar(start: Fraction, length: Fraction, meter: Meter, pickup: bool = False) -> Bar:
    """`Bar(start, length, meter, pickup)` through its slots (for loaders and readers that
    build a score's bars by the hundred)."""
    bar = object.__new__(Bar)
    set_start, set_length, set_meter, set_pickup = _SET_BAR
    set_start(bar, start)
    set_length(bar, length)
    set_meter(bar, meter)
    set_pickup(bar, pickup)
    return bar


class TempoChange(NamedTuple):
    """A tempo in quarter notes per minute taking effect at `onset` (quarter notes)."""

    onset: Fraction
    bpm: float


@dataclass(frozen=True, slots=True)
class Part:
    """A part (staff group / MIDI track) as read; notes refer to it by index."""

    index: int
    name: str = ""
    program: int = 0
    is_drum: bool = False


@dataclass(frozen=True, slots=True)
class ScoreMeta:
    """Identity and provenance of a score.

    `id` is stable (`<corpus>/<relative path>[#X:<n>]` once the pipeline assigns it; a reader
    uses the file name). `collection_item` is the tune number inside a collection file (ABC `X:`).
    """

    id: str
    title: str = ""
    composer: str = ""
    source_path: str = ""
    collection_item: str | None = None


@dataclass(frozen=True)
class Score:
    """A canonical score: metadata, parts, sorted notes, bars, tempo map, key and a counting report.

    `notes` may be given as any sequence of `Note` or as a `NoteTable`; the score holds a
    `NoteTable` (`score.table`), which is also a sequence of `Note`.
    `report` counts what readers and stages changed or dropped (e.g. `grace_dropped`,
    `ties_merged`, `notes_moved`); a stage returns a new score with its counts merged in.
    `pickup_shift` is how far (quarters) meter normalisation moved all notes to right-align a pickup.
    """

    meta: ScoreMeta
    notes: Sequence[Note]
    bars: tuple[Bar, ...]
    parts: tuple[Part, ...] = (Part(0),)
    tempos: tuple[TempoChange, ...] = ()
    key: str | None = None
    report: Mapping[str, float] = field(default_factory=dict)
    pickup_shift: Fraction = Fraction(0)

    def __post_init__(self) -> None:
        if not isinstance(self.notes, NoteTable):
            object.__setattr__(self, "notes", NoteTable.of(self.notes))

    # -- derived views -------------------------------------------------------------------------
    @property
    def table(self) -> NoteTable:
        """The notes as integer columns (ticks at the score's exact resolution)."""
        notes = self.notes
        assert isinstance(notes, NoteTable)  # __post_init__ made it one
        return notes

    @property
    def end(self) -> Fraction:
        """End of the last bar (or of the last note when that sounds past it), in quarters."""
        bar_end = self.bars[-1].end if self.bars else Fraction(0)
        table = self.table
        if not len(table):
            return max(bar_end, Fraction(0))
        return max(bar_end, table.quarters(int((table.onset + table.duration).max())))

    @property
    def tempo(self) -> float:
        """The tempo at the start of the piece in quarter-note BPM (120 when none is marked)."""
        return self.tempos[0].bpm if self.tempos else DEFAULT_BPM

    def note_keys(self) -> list[tuple[Fraction, int, Fraction]]:
        """(onset, pitch, duration) of every note, sorted: what a round trip must preserve."""
        return sorted((n.onset, n.pitch, n.duration) for n in self.notes)

    def meters(self) -> list[str]:
        """The meter of every bar, in order, as `"n/d"` strings."""
        return [str(b.meter) for b in self.bars]

    # -- construction helpers ------------------------------------------------------------------
    def replace(self, **changes: object) -> Score:
        """A copy with fields replaced (notes are put in canonical order when given)."""
        if "notes" in changes:
            changes["notes"] = NoteTable.of(changes["notes"]).sorted()  # type: ignore[arg-type]
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_counts(self, counts: Mapping[str, float]) -> Score:
        """A copy whose report has `counts` added (numbers are summed key by key)."""
        merged = dict(self.report)
        for key, value in counts.items():
            merged[key] = merged.get(key, 0) + value
        return dataclasses.replace(self, report=merged)

    # -- invariants ----------------------------------------------------------------------------
    def validate(self) -> Score:
        """Check the invariants and return self; raise ScoreValidationError naming the first breach."""
        where = self.meta.id or "<score>"

        def fail(msg: str) -> None:
            raise ScoreValidationError(f"{where}: {msg}")

        table = self.table
        if len(table):
            message = _first_note_breach(table, len(self.parts))
            if message:
                fail(message)
        message, expected_start = _bars_breach(self.bars)
        if message:
            fail(message)
        if len(table) and not self.bars:
            fail("score has notes but no bars")
        if len(table):
            last = int(table.onset[-1])
            if last * expected_start.denominator >= expected_start.numerator * table.resolution:
                fail(
                    f"note onset {table.quarters(last)} lies after the last bar (ends {expected_start})"
                )
        last_tempo = Fraction(-1)
        for change in self.tempos:
            if change.onset < last_tempo:
                fail("tempo changes are not sorted")
            if not change.bpm > 0:
                fail(f"tempo {change.bpm} BPM is not positive")
            last_tempo = change.onset
        return self


def _bars_breach(bars: Sequence[Bar]) -> tuple[str | None, Fraction]:
    """The message for the first bar that breaks a bar invariant (or None), and the end of the
    last bar. Integer arithmetic at one common denominator: Fraction additions made bar checks
    most of the cost of loading a stored score."""
    if not bars:
        return None, Fraction(0)
    den = math.lcm(*{x.denominator for b in bars for x in (b.start, b.length)})
    starts = [b.start.numerator * (den // b.start.denominator) for b in bars]
    lengths = [b.length.numerator * (den // b.length.denominator) for b in bars]
    ends = list(itertools.accumulate(lengths))
    contiguous = starts[0] == 0 and starts[1:] == ends[:-1]
    if contiguous and min(lengths) > 0 and not any(b.pickup for b in bars[1:]):
        return None, Fraction(ends[-1], den)
    expected = Fraction(0)
    for i, bar in enumerate(bars):  # the slow path, only to name the first breach
        if bar.start != expected:
            return (
                f"bar {i} starts at {bar.start}, expected {expected} (bars must be contiguous)",
                expected,
            )
        if bar.length <= 0:
            return f"bar {i} has non-positive length {bar.length}", expected
        if bar.pickup and i != 0:
            return f"bar {i} is flagged as a pickup but only the first bar may be one", expected
        expected = bar.end
    raise AssertionError("unreachable: the fast check found a breach")


def _first_note_breach(table: NoteTable, n_parts: int) -> str | None:
    """The message for the first note (in order) that breaks a note invariant, or None."""
    onset, pitch, duration, velocity, part = table.columns()
    checks = [
        (onset < 0, "negative onset"),
        (duration <= 0, "non-positive duration"),
        ((pitch < 0) | (pitch > 127), "pitch outside 0-127"),
        ((velocity < 1) | (velocity > 127), "velocity outside 1-127"),
        ((part < 0) | (part >= n_parts), "part"),
    ]
    unsorted = table.unsorted_at()
    bad = [unsorted] if unsorted is not None else []
    bad += [int(np.argmax(mask)) for mask, _ in checks if mask.any()]
    if not bad:
        return None
    i = min(bad)
    at = table.quarters(int(onset[i]))
    if i == unsorted:
        return f"notes are not sorted at onset {at}"
    if onset[i] < 0:
        return f"negative onset {at}"
    if duration[i] <= 0:
        return f"non-positive duration {table.quarters(int(duration[i]))} at onset {at}"
    if not 0 <= pitch[i] <= 127:
        return f"pitch {pitch[i]} outside 0-127 at onset {at}"
    if not 1 <= velocity[i] <= 127:
        return f"velocity {velocity[i]} outside 1-127 at onset {at}"
    return f"note refers to part {part[i]} but the score has {n_parts} parts"


def bars_from_meters(meters: Iterable[Meter], start: Fraction = Fraction(0)) -> tuple[Bar, ...]:
    """Contiguous full bars of the given meters starting at `start`."""
    meters = list(meters)
    # Integer starts at one common denominator: a Fraction addition per bar cost more than the
    # rest of meter normalisation.
    den = math.lcm(start.denominator, *{m.length.denominator for m in meters})
    tick = start.numerator * (den // start.denominator)
    bars = []
    for meter in meters:
        length = meter.length
        bars.append(new_bar(fraction(tick, den), length, meter))
        tick += length.numerator * (den // length.denominator)
    return tuple(bars)
