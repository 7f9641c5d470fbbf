"""music21's re-barring of overfull ABC measures (`reBar`, `bestTimeSignature`), without music21.

music21 splits an overfull measure at the meter's length; the remainder gets the time signature
`meter.bestTimeSignature` guesses from its length and its shortest note; 3/4 against 6/8 and 6/4
against 12/8 and 3/2 are decided by the average accent weight of the note onsets. Times are
integer ticks of 1/unit quarter note, as the ABC reader keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import gcd

from pipeline.score import Meter

_LIMIT = Fraction(1, 32)  # a 128th note, music21's smallest denominator type
# Accent weights of music21's level-0 accent partitions: (span start, weight); 1/16 elsewhere.
_ACCENTS: dict[tuple[int, int], dict[Fraction, float]] = {
    (3, 4): {Fraction(k, 4): w for k, w in enumerate([1, .125, .25, .125, .5, .125, .25, .125, .5, .125, .25, .125])},
    (6, 8): {Fraction(k, 4): w for k, w in enumerate([1, .125, .25, .125, .25, .125, .5, .125, .25, .125, .25, .125])},
    (6, 4): {Fraction(k, 2): w for k, w in enumerate([1, .125, .25, .125, .25, .125, .5, .125, .25, .125, .25, .125])},
    (12, 8): {Fraction(k, 2): w for k, w in enumerate([1, .125, .125, .25, .125, .125, .5, .125, .125, .25, .125, .125])},
    (3, 2): {Fraction(k, 2): w for k, w in enumerate([1, .125, .25, .125, .5, .125, .25, .125, .5, .125, .25, .125])},
}  # fmt: skip
_MIN_WEIGHT = 0.0625

RawNote = tuple[int, int, int, str | None]  # onset ticks, pitch, duration ticks, tie
# (local onset, length, sounding, indices of a chord's notes) of every note, chord, rest, grace
# note and chord symbol of a measure; sounding = music21 counts it among a measure's `.notes`.
Event = tuple[int, int, bool, tuple[int, ...] | None]


@dataclass
class Measure:
    """One music21 measure: where it starts, how long it is, its own time signature, its events."""

    offset: int  # ticks (quarter / unit) from the start
    length: int
    meter: Meter | None
    events: list[Event] = field(default_factory=list)
    barline: bool = False  # closed by a bar line music21 stores as an object (`:|`, `||`, ...)


def _dyadic(value: Fraction) -> bool:
    """music21 keeps lengths with a power-of-two denominator as floats, others as Fractions."""
    den = value.denominator
    return den & (den - 1) == 0


def _dots(length: Fraction) -> int:
    """Dots of the single note type of `length` (0 when it needs a tie or a tuplet)."""
    for dots in range(1, 4):
        base = length * 2**dots / (2 ** (dots + 1) - 1)
        if _dyadic(base) and (base.numerator & (base.numerator - 1)) == 0:
            return dots
    return 0


def _dot_multiplier(dots: int) -> Fraction:
    return Fraction(2 ** (dots + 1) - 1, 2**dots)


def _closest_type(length: Fraction) -> tuple[Fraction, bool]:
    """(number of such notes in a whole note, exact) as music21's quarterLengthToClosestType."""
    per_whole = 4 / length
    if per_whole.denominator == 1 and per_whole.numerator & (per_whole.numerator - 1) == 0:
        return per_whole, per_whole <= 2048
    if per_whole in (Fraction(1, 2), Fraction(1, 4), Fraction(1, 8), Fraction(1, 16)):
        return per_whole, True
    candidate = Fraction(1, 16)
    while candidate <= 2048:
        if 4 / length < candidate < 8 / length:
            return candidate, False
        candidate *= 2
    return Fraction(0), False


def _strength(meter: tuple[int, int], events: list[tuple[Fraction, Fraction, bool]]) -> float:
    onsets = [onset for onset, _length, sounding in events if sounding]
    if not onsets:
        return 0.0
    table = _ACCENTS[meter]
    return sum(table.get(o, _MIN_WEIGHT) for o in onsets) / len(onsets)


def best_time_signature(
    total: Fraction, events: list[tuple[Fraction, Fraction, bool]]
) -> Meter | None:
    """The meter music21 gives a measure of length `total` holding `events`; None if it fails.

    `events` are (onset, length, sounding) of its notes, chords, rests, grace notes and symbols.
    """
    min_dur = Fraction(4)
    min_dots = 0
    for _onset, length, _sounding in events:
        if length and length < min_dur and _dyadic(length):
            min_dur = length
            min_dots = _dots(length)
    if not _dyadic(total):
        numerator, denominator = total.numerator, total.denominator
    else:
        test = min_dur
        i = 10
        while i > 0:
            if (total / test).denominator == 1 or test <= _LIMIT:
                break
            test = test / (2 * _dot_multiplier(min_dots))
            i -= 1
        i = 10
        while i > 0:
            if test < _LIMIT:
                test = _LIMIT
                break
            per_whole, match = _closest_type(test)
            if match or per_whole == 128:
                break
            test = test / (2 * _dot_multiplier(min_dots))
            i -= 1
        per_whole, match = _closest_type(test)
        if not match:
            return None
        multiplier = 1
        count = Fraction(0)
        while i > 0:
            count = multiplier * total / test
            if count.denominator == 1:
                break
            multiplier *= 2
            i -= 1
        numerator = int(count)
        denominator = int(per_whole * multiplier)
        divisor = gcd(numerator, denominator)
        if divisor == 0:
            return None
        numerator //= divisor
        denominator //= divisor
    if numerator <= 0 or denominator <= 0:
        return None
    if numerator == denominator and numerator not in (2, 4):
        numerator = denominator = 4
    elif denominator == 1:
        numerator, denominator = numerator * 4, 4
    elif denominator == 2 and numerator != denominator:
        numerator, denominator = numerator * 2, 4
    if (numerator, denominator) == (3, 4):
        return (
            Meter(6, 8) if _strength((3, 4), events) <= _strength((6, 8), events) else Meter(3, 4)
        )
    if (numerator, denominator) == (6, 4):
        strengths = [_strength(m, events) for m in ((6, 4), (12, 8), (3, 2))]
        best = max(strengths)
        if best == strengths[0]:
            return Meter(6, 4)
        return Meter(3, 2) if best == strengths[2] else Meter(12, 8)
    return Meter(numerator, denominator)


def rebar(measures: list[Measure], notes: list[RawNote], unit: int) -> None:
    """music21's reBar: split each overfull original measure once at the current meter's length."""
    last: Meter | None = None
    originals = list(measures)
    for k, measure in enumerate(originals):
        if measure.meter is not None:
            last = measure.meter
        if last is None:
            return  # music21 gives up without a time signature
        limit = last.length.numerator * (unit // last.length.denominator)
        if measure.length <= limit:
            continue
        tail_length = measure.length - limit
        tail_events: list[Event] = []
        crossing: list[Event] = []
        moved = measure.barline  # splitting moves the closing bar line object to the tail
        for onset, length, sounding, chord in measure.events:
            if onset >= limit:
                moved = True
                tail_events.append((onset - limit, length, sounding, chord))
            elif onset + length > limit:
                crossing.append((onset, length, sounding, chord))
                tail_events.append((0, onset + length - limit, sounding, chord))
        tail_offset = measure.offset + limit
        stale = [c for c in crossing if c[3] is not None]
        if not moved and stale:
            # music21 does not see a split chord shorten its measure: the remainder lands after
            # the measure's old end, on top of the next measure, and the halves stay two notes.
            tail_offset = measure.offset + measure.length
            onset, length, _sounding, chord = stale[0]
            for index in chord or ():
                start, pitch, _duration, _tie = notes[index]
                notes[index] = (start, pitch, measure.offset + limit - start, None)
                notes.append((tail_offset, pitch, start + length - measure.offset - limit, None))
        tail = Measure(tail_offset, tail_length, None, tail_events)
        if tail_length != limit:
            best = best_time_signature(
                Fraction(tail_length, unit),
                [(Fraction(o, unit), Fraction(d, unit), s) for o, d, s, _c in tail_events],
            )
            if best is None:
                return  # music21's bestTimeSignature failed: reBar stops here
            tail.meter = best
            if k + 1 < len(originals) and originals[k + 1].meter is None:
                originals[k + 1].meter = last
        measure.length = limit
        measure.events = [e for e in measure.events if e[0] < limit]
        at = next((i for i, m in enumerate(measures) if m.offset > tail_offset), len(measures))
        measures.insert(at, tail)
