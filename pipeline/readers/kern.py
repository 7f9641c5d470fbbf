"""Fast Humdrum **kern reader: the canonical score music21 gives for a `.krn` file, without music21.

Each **kern spine is a part (numbered from the right, as music21 does); split spines are voices
of their part. Times follow each spine's own durations; bars are the reference part's measures
(the rightmost spine with any) with lengths from measure offsets, exactly as the music21 reader
measures them, so pickups and short repeat bars come out the same. Ties merge, chords split,
grace notes are dropped and counted; other spine types (**dynam, **text...) are skipped.

Where music21 misreads the source this reader follows the source instead: a chord keeps its
pitched members when one member cannot be read (music21 drops the chord); voices of a split
inside a split are laid out (music21 loses them); a tie on one chord member ties only that
member (music21 gives it to every member); a join straight after a split, and a join closing
nested voices, keep the voices in time (see kern_tokens). `quirks=True` reproduces each of these
misreadings instead, so that a crosscheck can tell music21's errors from ours.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import cast

from pipeline.errors import ScoreParseError, ScoreValidationError, Unsupported
from pipeline.readers.common import (
    DEFAULT_METER,
    MAX_TEXT_BYTES,
    ItemFailure,
    TieMerger,
    bars_from_time_signatures,
    make_bars,
    read_capped,
    report_dict,
)
from pipeline.readers.conventions import article_first
from pipeline.readers.kern_tokens import (
    BAD,
    BAR,
    INSTRUMENT,
    KEY,
    METER,
    NOTE,
    QUIRKS,
    TEMPO,
    Component,
    NotePayload,
    Obj,
    Piece,
    Quirks,
    Spine,
    kern_meaning,
    read_piece,
    split_pieces,
)
from pipeline.score import DEFAULT_VELOCITY, Meter, Note, Part, Score, ScoreMeta, TempoChange

_LIMIT = 10_000  # the reference limits onsets and durations to this denominator
_ZERO = Fraction(0)
_MAX_DEPTH = 64  # voices of splits inside splits; deeper is hostile input
_MAX_BARS = 100_000  # a longer piece is hostile input (bars are appended one by one)
_MARKS = frozenset({METER, KEY, TEMPO, INSTRUMENT})
Time = int | Fraction  # integer ticks on a piece's grid, or exact quarters when it has none
# One laid-out object: (offset, line, sequence, object, duration, from a split voice).
Placed = tuple[Time, int, int, Obj, Time, bool]


def read_kern(
    path: Path, *, expand_repeats: bool = False, quirks: bool = False
) -> list[Score | ItemFailure]:
    """Read a **kern file: one score, or one per piece of a multi-piece file (`#X:<n>`).

    With `quirks`, reproduce music21's known misreadings (kern_tokens.QUIRKS), each one that
    changes a piece counted in its report as `m21_quirk:<name>`.
    """
    if expand_repeats:
        raise Unsupported("expand_repeats")
    try:
        data = read_capped(path, MAX_TEXT_BYTES, "kern file")
    except OSError as exc:
        raise ScoreParseError(f"{path}: cannot read it ({exc})", "missing_file") from exc
    # music21 opens kern files as Latin-1 text with universal newlines.
    lines = data.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ScoreParseError(f"{path}: the file holds no humdrum lines", "parse_error")
    try:
        pieces = split_pieces(lines)
    except ScoreParseError as exc:
        raise ScoreParseError(f"{path}: {exc}", exc.reason) from exc
    if len(pieces) == 1:
        try:
            return [_read(pieces[0], path, None, quirks)]
        except ScoreValidationError as exc:
            raise ScoreParseError(str(exc), "invalid_score") from exc
    out: list[Score | ItemFailure] = []
    for number, piece_lines in enumerate(pieces, start=1):
        item = str(number)
        try:
            out.append(_read(piece_lines, path, item, quirks))
        except ScoreParseError as exc:
            out.append(ItemFailure(item, exc.reason, f"{path}#X:{item}: {exc}"))
        except ScoreValidationError as exc:
            out.append(ItemFailure(item, "invalid_score", str(exc)))
        except Unsupported as exc:
            out.append(ItemFailure(item, f"unsupported:{exc.what}", str(exc)))
    return out


def _read(lines: list[str], path: Path, item: str | None, quirks: bool) -> Score:
    """One piece; with quirks, each misreading that came into play is counted if it mattered."""
    if not quirks:
        return _build(read_piece(lines), path, item, Quirks())
    on = frozenset(QUIRKS)
    used = Quirks(on)
    score = _build(read_piece(lines, used), path, item, used)
    counts: Counter[str] = Counter()
    for name in sorted(used.hit):
        # Counted when the reading without this one misreading (all others kept) differs.
        without = Quirks(on - {name})
        try:
            other = _build(read_piece(lines, without), path, item, without)
            same = (other.notes, other.bars, other.tempos, other.key, other.parts) == (
                score.notes, score.bars, score.tempos, score.key, score.parts,
            )  # fmt: skip
        except (ScoreParseError, ScoreValidationError, Unsupported):
            same = False
        if not same:
            counts[f"m21_quirk:{name}"] += 1
    return score.with_counts(counts) if counts else score


class _Clock:
    """Exact times as integer ticks (fast) when every duration fits a small common grid.

    With a grid finer than the reference's 1/10000 limit, times stay Fractions and are limited
    the way the reference limits them.
    """

    def __init__(self, denominators: set[int]) -> None:
        grid = 1
        for denominator in denominators:
            grid = math.lcm(grid, denominator)
            if grid > _LIMIT:
                break
        self.grid = grid if grid <= _LIMIT else 0
        self._memo: dict[int, Fraction] = {}

    def ticks(self, value: Fraction) -> Time:
        return value.numerator * (self.grid // value.denominator) if self.grid else value

    def with_ticks(self, objects: list[Obj]) -> list[tuple[Obj, Time]]:
        """Each object with its duration on this clock (the hot loop of a read, kept inline)."""
        grid = self.grid
        if not grid:
            return [(obj, obj.dur) for obj in objects]
        return [(obj, obj.dur.numerator * (grid // obj.dur.denominator)) for obj in objects]

    def time(self, ticks: Time) -> Fraction:
        if self.grid:
            value = self._memo.get(ticks)  # type: ignore[arg-type]
            if value is None:
                value = self._memo[ticks] = Fraction(ticks, self.grid)  # type: ignore[index]
            return value
        value = Fraction(ticks)
        return value if value.denominator <= _LIMIT else value.limit_denominator(_LIMIT)

    def limit(self, ticks: Time) -> Time:
        """The reference's limited value of a time (a no-op on the integer grid)."""
        return ticks if self.grid else self.time(ticks)


class _PartReading:
    """What one part contributes: notes, measures and the positioned tandem objects."""

    def __init__(self) -> None:
        self.notes: list[tuple[Time, int, int, Obj, Time]] = []
        # (offset, duration, meter written at the measure's start)
        self.measures: list[tuple[Time, Time, Meter | None]] = []
        self.marks: list[tuple[Time, int, Obj]] = []  # meters, keys, tempos, instruments
        self.end: Time = 0

    def first(self, kind: int) -> Obj | None:
        found = [m for m in self.marks if m[2].kind == kind]
        return min(found, key=lambda m: (m[0], m[1]))[2] if found else None


def _build(piece: Piece, path: Path, item: str | None, quirks: Quirks) -> Score:
    counts: Counter[str] = Counter()
    kern = [s for s in piece.spines if s.spine_type() == "kern" and s.parent is None]
    found: dict[int, list[Obj]] = {}
    for spine in piece.spines:
        if spine.spine_type() == "kern":
            found[spine.sid] = _objects(spine, counts, quirks)
    clock = _Clock({obj.dur.denominator for objs in found.values() for obj in objs})
    objects = {sid: clock.with_ticks(objs) for sid, objs in found.items()}
    readings = [_read_part(spine, objects, quirks) for spine in reversed(kern)]
    raw_notes: list[tuple[Time, int, Time, int]] = []
    for index, reading in enumerate(readings):
        raw_notes.extend(_merge_ties(reading, index, clock, counts, quirks))
    raw_notes.sort()
    notes = [Note(clock.time(o), p, clock.time(d), DEFAULT_VELOCITY, i) for o, p, d, i in raw_notes]
    last_onset = notes[-1].onset if notes else None
    raw = _raw_bars(readings, clock, counts)
    shortest = min((meter.length for _, meter in raw), default=DEFAULT_METER.length)
    if len(raw) > _MAX_BARS or (last_onset or 0) / shortest > _MAX_BARS:
        raise Unsupported("kern:length", f"more than {_MAX_BARS} bars")
    bars = make_bars(raw, last_onset, counts)
    parts = tuple(
        Part(i, str(r.first(INSTRUMENT).value) if r.first(INSTRUMENT) else "")  # type: ignore[union-attr]
        for i, r in enumerate(readings)
    ) or (Part(0),)
    title, composer = _metadata(piece.references)
    return Score(
        meta=ScoreMeta(
            path.name + (f"#X:{item}" if item else ""), title, composer, str(path), item
        ),
        notes=tuple(notes),
        bars=bars,
        parts=parts,
        tempos=_tempos(readings, clock),
        key=next((str(k.value) for r in readings if (k := r.first(KEY)) is not None), None),
        report=report_dict(counts),
    ).validate()


def _objects(spine: Spine, counts: Counter[str], quirks: Quirks) -> list[Obj]:
    """The objects a kern spine's tokens make (unparsable tokens are counted, as music21 drops them)."""
    out = []
    for line, token in spine.tokens:
        kind, dur, value = kern_meaning(token)
        if kind < 0:
            continue
        if kind == BAD:
            counts["unparsed_tokens"] += 1
            continue
        if kind == NOTE:
            _, _, dropped, unknown = cast(NotePayload, value)
            if dropped and "pitchless-chord-dropped" in quirks.on:
                quirks.hit.add("pitchless-chord-dropped")
                counts["unparsed_tokens"] += 1
                continue
            if dropped:
                counts["unparsed_tokens"] += dropped
            if unknown:
                counts["unknown_signifiers"] += unknown
        out.append(Obj(kind, line, dur, value))
    return out


def _read_part(
    spine: Spine, objects: dict[int, list[tuple[Obj, Time]]], quirks: Quirks
) -> _PartReading:
    """Lay a part out in time and cut it into measures the way music21 does."""
    placed: list[Placed] = []
    _lay(spine, 0, True, 0, objects, placed, quirks)
    placed.sort()  # by offset, line, then placing order (unique: objects never compared)
    reading = _PartReading()
    notes, marks = reading.notes, reading.marks
    high: Time = 0  # end of the measures closed so far
    # The measure being filled: music21 starts with an unnumbered one for a pickup; a measure
    # from a barline is kept even when empty (it holds barline objects), a pickup one is not.
    start: Time = 0
    number, from_bar, repeat = 0, False, False
    elements: list[tuple[Time, Obj, Time, bool]] = []
    top: list[tuple[Time, Obj, Time]] = []  # zero-length objects outside any measure

    def close() -> None:
        nonlocal high
        length = max((rel + ticks for rel, _, ticks, _ in elements), default=0)
        meters = []
        for rel, obj, ticks, voice in elements:
            kind = obj.kind
            if kind == NOTE:
                notes.append((high + rel, obj.line, len(notes), obj, ticks))
            elif kind in _MARKS:
                marks.append((high + rel, obj.line, obj))
                if kind == METER and rel == 0 and not voice:
                    meters.append((obj.line, obj.value))
        if not reading.measures:  # music21 moves what stands at offset 0 into the first measure
            meters += [(obj.line, obj.value) for at, obj, _ in top if obj.kind == METER and at == 0]
        meter = min(meters, key=lambda m: m[0])[1] if meters else None
        reading.measures.append((high, length, meter))  # type: ignore[arg-type]
        high += length

    for offset, _line, _seq, obj, ticks, voice in placed:
        if obj.kind == BAR:
            if from_bar or elements:
                close()
            number, repeat = cast(tuple[int, bool], obj.value)
            start, elements = offset, []
            from_bar = True
        elif number != 0 or ticks != 0:
            elements.append((offset - start, obj, ticks, voice))
        else:
            top.append((high, obj, ticks))
    if elements or (from_bar and repeat):
        close()
    for at, obj, ticks in top:
        _position(reading, at, obj, ticks)
    reading.end = high
    return reading


def _position(reading: _PartReading, at: Time, obj: Obj, ticks: Time) -> None:
    if obj.kind == NOTE:
        reading.notes.append((at, obj.line, len(reading.notes), obj, ticks))
    elif obj.kind in (METER, KEY, TEMPO, INSTRUMENT):
        reading.marks.append((at, obj.line, obj))


def _lay(
    spine: Spine,
    start: Time,
    keep_bars: bool,
    depth: int,
    objects: dict[int, list[tuple[Obj, Time]]],
    placed: list[Placed],
    quirks: Quirks,
) -> Time:
    """Place a spine's objects one after another from `start`; voices go in at their split.

    Returns the end of everything placed. The second voice's barlines are not kept (the first
    voice's are), as in music21; unlike music21, a split inside a split is laid out too.
    """
    if depth > _MAX_DEPTH:
        raise Unsupported("kern:split-depth", f"voices nested {depth} deep")
    voice = depth > 0
    high = start
    points = sorted(spine.children_at)
    if voice and points and "nested-split-lost" in quirks.on:
        quirks.hit.add("nested-split-lost")
        points = []
    late = "split-after-join-late" in quirks.on
    last = -1

    def insert(at_line: int, high: Time) -> Time:
        ends = [
            _lay(child, high, keep_bars and child.first_voice, depth + 1, objects, placed, quirks)
            for child in spine.children_at[at_line]
        ]
        if voice:
            # A split inside a split (music21 loses these voices): the music after the join
            # starts where the voices meet again, even if a note sounds on past the join.
            return max(high, min(ends))
        return max(high, *ends)

    for obj, ticks in objects[spine.sid]:
        if points:
            # Every split since the previous object goes in now, in order. (music21 removes
            # from the list it iterates, so of a join and a new split with nothing of the parent
            # between them the second split's voices land one object late.)
            if late:
                high = _late_splits(points, last, obj.line, high, insert, quirks)
            else:
                for point in [p for p in points if last <= p <= obj.line]:
                    high = insert(point, high)
                    points.remove(point)
        last = obj.line
        if obj.kind != BAR or keep_bars:
            placed.append((high, obj.line, len(placed), obj, ticks, voice))
        high += ticks
    for point in points:
        high = insert(point, high)
    return high


def _late_splits(
    points: list[int],
    last: int,
    line: int,
    high: Time,
    insert: Callable[[int, Time], Time],
    quirks: Quirks,
) -> Time:
    """music21's loop over the splits due before `line`: it removes from the list it iterates."""
    i = 0
    while i < len(points):
        if last <= points[i] <= line:
            high = insert(points.pop(i), high)
            if i < len(points) and last <= points[i] <= line:
                quirks.hit.add("split-after-join-late")  # skipped: it waits for the next object
        i += 1
    return high


def _merge_ties(
    reading: _PartReading, part: int, clock: _Clock, counts: Counter[str], quirks: Quirks
) -> list[tuple[Time, int, Time, int]]:
    """Notes of one part with ties merged and chords split (the reference's `_part_notes`)."""
    ties = TieMerger(counts)  # [onset, pitch, duration, part]
    lend = "chord-tie-lent" in quirks.on
    for at, _line, _seq, obj, ticks in sorted(reading.notes):
        components, grace, _, _ = cast(NotePayload, obj.value)
        if lend and len(components) > 1:
            components = _lend_tie(components, quirks)
        if grace:
            counts["grace_dropped"] += len(components)
            continue
        onset = clock.limit(at)
        duration = clock.limit(ticks)
        if duration <= 0:
            counts["zero_duration_dropped"] += len(components)
            continue
        if len(components) > 1:
            counts["chords_split"] += 1
        for pitch, tie in components:
            ties.add(onset, pitch, duration, tie, part)
    return [(o, int(p), d, int(i)) for o, p, d, i in ties.notes]


def _lend_tie(components: tuple[Component, ...], quirks: Quirks) -> tuple[Component, ...]:
    """music21 gives a chord's first tie to every member that has none."""
    tie = next((t for _, t in components if t is not None), None)
    if tie is None or all(t is not None for _, t in components):
        return components
    quirks.hit.add("chord-tie-lent")
    return tuple((pitch, t if t is not None else tie) for pitch, t in components)


def _limit(value: Fraction) -> Fraction:
    return value if value.denominator <= _LIMIT else value.limit_denominator(_LIMIT)


def _raw_bars(
    readings: list[_PartReading], clock: _Clock, counts: Counter[str]
) -> list[tuple[Fraction, Meter]]:
    """(length, meter) of the reference part's measures (the first part that has any)."""
    reference = next((r for r in readings if r.measures), None)
    if reference is None:
        counts["bars_from_time_signatures"] += 1
        first = readings[0] if readings else _PartReading()
        changes = [(clock.time(at), obj.value) for at, _, obj in first.marks if obj.kind == METER]
        return bars_from_time_signatures(changes, clock.time(first.end), counts)  # type: ignore[arg-type]
    first_meter = reference.first(METER)
    current: Meter = first_meter.value if first_meter else DEFAULT_METER  # type: ignore[assignment]
    if first_meter is None:
        counts["default_meter"] += 1
    raw: list[tuple[Fraction, Meter]] = []
    measures = reference.measures
    for i, (offset, length, meter) in enumerate(measures):
        current = meter or current
        if i + 1 < len(measures):
            value = clock.time(measures[i + 1][0]) - clock.time(offset)
        else:
            value = clock.time(length)
            if value <= 0:
                value = current.length
        raw.append((value, current))
    return raw


def _tempos(readings: list[_PartReading], clock: _Clock) -> tuple[TempoChange, ...]:
    """Numbered metronome marks, one per onset, the first part's first (as the reference)."""
    found: dict[Fraction, float] = {}
    for reading in readings:
        for at, _, obj in sorted(reading.marks, key=lambda m: (m[0], m[1])):
            if obj.kind == TEMPO:
                # music21's getQuarterBPM goes through seconds per beat: same float rounding
                found.setdefault(clock.time(at), float(60 / (60 / obj.value)))  # type: ignore[operator]
    return tuple(TempoChange(at, bpm) for at, bpm in sorted(found.items()))


def _metadata(references: list[tuple[str, str]]) -> tuple[str, str]:
    """Title and composer as music21's metadata gives them (several values are summarised)."""
    # music21 files an unknown code that is one of its own names (`!!!title:`) under that name.
    titles = [article_first(v) for c, v in references if c in ("OTL", "title")]
    movements = [article_first(v) for c, v in references if c in ("OMD", "movementName")]
    composers = [v for c, v in references if c in ("COM", "composer")]
    title = ", ".join(titles) or ", ".join(movements)
    if len(composers) > 2:
        composer = f"{composers[0]} and {len(composers) - 1} others"
    else:
        composer = " and ".join(composers)
    return title, composer


__all__ = ["read_kern"]
