"""The canonical score: every reader produces it, every stage transforms it, the tokenizer reads it.

Times are exact quarter-note rationals (`fractions.Fraction`) measured from the start of the
first bar; nothing is quantised here. A score validates itself: notes sorted, times non-negative,
durations positive, pitches 0-127, bars contiguous from 0 and covering every onset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NamedTuple

from pipeline.errors import ScoreValidationError

DEFAULT_VELOCITY = 80
DEFAULT_BPM = 120.0


class Note(NamedTuple):
    """One sounding note: onset and duration in quarter notes, MIDI pitch, velocity, part index.

    Field order is the canonical sort order: by onset, then pitch, then duration.
    """

    onset: Fraction
    pitch: int
    duration: Fraction
    velocity: int = DEFAULT_VELOCITY
    part: int = 0

    @property
    def end(self) -> Fraction:
        """Offset of the note in quarter notes."""
        return self.onset + self.duration


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
        return Fraction(4 * self.numerator, self.denominator)

    @classmethod
    def parse(cls, text: str) -> Meter:
        """Parse `"n/d"` (e.g. `"6/8"`)."""
        try:
            num, den = text.strip().split("/")
            return cls(int(num), int(den))
        except ValueError as exc:
            raise ValueError(f"not a meter: {text!r} (expected 'n/d', e.g. '3/4')") from exc

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


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

    `report` counts what readers and stages changed or dropped (e.g. `grace_dropped`,
    `ties_merged`, `notes_moved`); a stage returns a new score with its counts merged in.
    `pickup_shift` is how far (quarters) meter normalisation moved all notes to right-align a pickup.
    """

    meta: ScoreMeta
    notes: tuple[Note, ...]
    bars: tuple[Bar, ...]
    parts: tuple[Part, ...] = (Part(0),)
    tempos: tuple[TempoChange, ...] = ()
    key: str | None = None
    report: Mapping[str, float] = field(default_factory=dict)
    pickup_shift: Fraction = Fraction(0)

    # -- derived views -------------------------------------------------------------------------
    @property
    def end(self) -> Fraction:
        """End of the last bar (or of the last note when that sounds past it), in quarters."""
        bar_end = self.bars[-1].end if self.bars else Fraction(0)
        note_end = max((n.end for n in self.notes), default=Fraction(0))
        return max(bar_end, note_end)

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
        """A copy with fields replaced (notes are re-sorted when given)."""
        if "notes" in changes:
            changes["notes"] = tuple(sorted(changes["notes"]))  # type: ignore[call-overload]
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

        previous: Note | None = None
        prev_num, prev_den = 0, 1
        n_parts = len(self.parts)
        # Integer arithmetic on numerators and denominators: Fraction's own comparisons made
        # validation a sixth of a fast reader's time (denominators are always positive).
        for note in self.notes:
            num, den = note.onset.numerator, note.onset.denominator
            if previous is not None:
                before, after = prev_num * den, num * prev_den
                if before > after or (before == after and previous[1:] > note[1:]):
                    fail(f"notes are not sorted at onset {note.onset}")
            if num < 0:
                fail(f"negative onset {note.onset}")
            if note.duration.numerator <= 0:
                fail(f"non-positive duration {note.duration} at onset {note.onset}")
            if not 0 <= note.pitch <= 127:
                fail(f"pitch {note.pitch} outside 0-127 at onset {note.onset}")
            if not 1 <= note.velocity <= 127:
                fail(f"velocity {note.velocity} outside 1-127 at onset {note.onset}")
            if not 0 <= note.part < n_parts:
                fail(f"note refers to part {note.part} but the score has {n_parts} parts")
            previous, prev_num, prev_den = note, num, den
        expected_start = Fraction(0)
        for i, bar in enumerate(self.bars):
            if bar.start != expected_start:
                fail(
                    f"bar {i} starts at {bar.start}, expected {expected_start} (bars must be contiguous)"
                )
            if bar.length <= 0:
                fail(f"bar {i} has non-positive length {bar.length}")
            if bar.pickup and i != 0:
                fail(f"bar {i} is flagged as a pickup but only the first bar may be one")
            expected_start = bar.end
        if self.notes and not self.bars:
            fail("score has notes but no bars")
        if self.notes and self.notes[-1].onset >= expected_start:
            fail(
                f"note onset {self.notes[-1].onset} lies after the last bar (ends {expected_start})"
            )
        last_tempo = Fraction(-1)
        for change in self.tempos:
            if change.onset < last_tempo:
                fail("tempo changes are not sorted")
            if not change.bpm > 0:
                fail(f"tempo {change.bpm} BPM is not positive")
            last_tempo = change.onset
        return self


def bars_from_meters(meters: Iterable[Meter], start: Fraction = Fraction(0)) -> tuple[Bar, ...]:
    """Contiguous full bars of the given meters starting at `start`."""
    bars = []
    for meter in meters:
        bars.append(Bar(start, meter.length, meter))
        start += meter.length
    return tuple(bars)
