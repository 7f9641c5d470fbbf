"""Fast ABC reader: the canonical scores music21 gives for an ABC file or book, without music21.

A book is read tune by tune (the file header prepended to each, as the reference does), one bad
tune becoming an ItemFailure. Bars follow music21's construction: measures are cut at bar lines
and at field lines followed by notes, field-only stretches merge into the next measure, the first
measure's time signature makes an anacrusis, and overfull measures are split at the meter's
length (music21's `reBar`, with `bestTimeSignature` for the remainder). A tune with fewer than two
measures has no measures, and its bars follow the time signatures.

Where music21 misreads the source, this reader reads what the source says; `quirks=True`
reproduces music21's misreadings instead (for crosschecks), counting in each score's report, as
`m21_quirk:<name>`, every misreading that changed it.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from math import lcm
from pathlib import Path
from typing import Any

from pipeline.errors import ScoreParseError, ScoreValidationError, Unsupported
from pipeline.readers.abc_fields import (
    KeySig,
    abc_version,
    parse_key,
    parse_meter,
    split_field,
    tempo_bpm,
)
from pipeline.readers.abc_lexer import (
    BAR,
    META,
    NOTE,
    QUIRK_ANNOTATION,
    QUIRK_CHORD_TIE,
    Lexer,
    Token,
)
from pipeline.readers.abc_meter import Measure, RawNote, rebar
from pipeline.readers.common import (
    DEFAULT_METER,
    ItemFailure,
    TieMerger,
    abc_text,
    bars_from_time_signatures,
    make_bars,
    report_dict,
    split_abc_tunes,
)
from pipeline.score import DEFAULT_VELOCITY, Meter, Note, Part, Score, ScoreMeta, TempoChange

# The longest tune of the folk corpora is under 3,000 characters; a tune this long is hostile or
# broken, and reading it (or falling back to music21) would take minutes and gigabytes.
MAX_TUNE_CHARS = 100_000
_ANNOTATION = tuple("^_<>@")
_BARLINE_OBJECTS = frozenset((":|", "||", "|]", "[|", ":"))


def read_abc(
    path: Path, *, expand_repeats: bool = False, quirks: bool = False
) -> list[Score | ItemFailure]:
    """Read an ABC file: one canonical score per tune, an ItemFailure for a bad tune of a book.

    `quirks=True` reproduces music21's known misreadings (counted as `m21_quirk:<name>`).
    """
    if expand_repeats:
        raise Unsupported("expand_repeats")
    text = abc_text(path)
    tunes = split_abc_tunes(text)
    if len(tunes) <= 1:
        # A single tune is parsed as the whole file, as music21 reads it (universal newlines).
        whole = text.replace("\r\n", "\n").replace("\r", "\n")
        try:
            return [_read_tune(whole, path, None, quirks)]
        except ScoreParseError as exc:
            raise ScoreParseError(f"{path}: {exc}", exc.reason) from exc
    out: list[Score | ItemFailure] = []
    for number, tune in tunes:
        try:
            out.append(_read_tune(tune, path, number, quirks))
        except Unsupported as exc:
            out.append(ItemFailure(number, f"unsupported:{exc.what}", str(exc)))
        except ScoreParseError as exc:
            out.append(ItemFailure(number, exc.reason, f"{path} X:{number}: {exc}"))
        except ScoreValidationError as exc:
            out.append(ItemFailure(number, "invalid_score", str(exc)))
    return out


@dataclass
class _PartReading:
    """One part as music21 builds it; times in integer ticks of 1/unit quarter."""

    unit: int
    notes: list[RawNote] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)
    part_meters: list[tuple[int, Meter]] = field(default_factory=list)
    tempos: list[tuple[int, float]] = field(default_factory=list)
    keys: list[tuple[int, int, KeySig]] = field(
        default_factory=list
    )  # (ticks, 1 = part-level, key)
    end: int = 0
    # with quirks: indices in `notes` of chord notes whose tie music21 ignores
    chord_tied: list[int] = field(default_factory=list)


def _read_tune(text: str, path: Path, number: str | None, quirks: bool) -> Score:
    if len(text) > MAX_TUNE_CHARS:
        raise ScoreParseError(
            f"tune of {len(text)} characters (over {MAX_TUNE_CHARS}); not read", "too_large"
        )
    lexer = Lexer(text, abc_version(text), quirks=quirks)
    lexer.tokenize()
    tokens = lexer.process()
    title: str | None = None
    composers: list[str] = []
    x_numbers: list[int] = []
    for token in tokens:
        if token.kind != META:
            continue
        tag, data = split_field(token.src)
        if tag == "T" and title is None:
            title = data
        elif tag == "C":
            composers.append(data)
        elif tag == "X":
            try:
                x_numbers.append(int(data))
            except ValueError as exc:
                raise ScoreParseError(f"bad reference number X:{data}", "parse_error") from exc
    if len(x_numbers) > 1:
        raise Unsupported("abc:several-tunes-in-one", f"{len(x_numbers)} X: fields")
    item = number if number is not None else str(x_numbers[0] if x_numbers else 1)
    counts: Counter[str] = Counter(lexer.quirk_counts)
    # Integer ticks make the bookkeeping fast: the unit divides every length and bar length.
    unit = 1
    for token in tokens:
        if token.kind == NOTE:
            unit = lcm(unit, token.length.denominator)
        elif token.kind == META and token.src.startswith("M:"):
            meter = parse_meter(split_field(token.src)[1])
            if meter is not None:
                unit = lcm(unit, meter.length.denominator)
    readings = [_read_part(voice, unit, counts, quirks) for voice in _split_voices(tokens)]
    notes: list[Note] = []
    for index, reading in enumerate(readings):
        notes.extend(_part_notes(reading, index, counts))
    notes.sort()
    reference = next((r for r in readings if r.measures), readings[0])
    raw = _bar_lengths(reference, counts)
    bars = make_bars(raw, notes[-1].onset if notes else None, counts)
    tempos: dict[Fraction, float] = {}
    for reading in readings:
        for onset, bpm in reading.tempos:
            tempos.setdefault(Fraction(onset, unit), bpm)
    first_key = min(readings[0].keys, key=lambda k: k[:2], default=None)
    if len(composers) <= 1:
        composer = composers[0] if composers else ""
    elif len(composers) == 2:
        composer = f"{composers[0]} and {composers[1]}"
    else:
        composer = f"{composers[0]} and {len(composers) - 1} others"
    return Score(
        meta=ScoreMeta(path.name + f"#X:{item}", title or "", composer, str(path), item),
        notes=tuple(notes),
        bars=bars,
        parts=tuple(Part(i) for i in range(len(readings))),
        tempos=tuple(TempoChange(o, b) for o, b in sorted(tempos.items())),
        key=first_key[2].name() if first_key is not None else None,
        report=report_dict(counts),
    ).validate()


def _split_voices(tokens: list[Token]) -> list[list[Token]]:
    """music21's voices: each `V:` field starting with a digit opens a part; the header is shared."""
    starts = [
        i
        for i, t in enumerate(tokens)
        if t.kind == META and t.src.startswith("V:") and split_field(t.src)[1][:1].isdigit()
    ]
    if len(starts) <= 1:
        return [tokens]
    bounds = [*starts, len(tokens)]
    return [tokens[: starts[0]] + tokens[a:b] for a, b in itertools.pairwise(bounds)]


def _measure_groups(tokens: list[Token]) -> list[tuple[list[Token], str | None]]:
    """music21's splitByMeasure + mergeLeadingMetaData: the token groups that become measures,
    each with the bar line closing it (None: none, or a start repeat)."""
    n = len(tokens)
    if sum(1 for t in tokens if t.kind == BAR and t.regular) < 2:
        return [(tokens, None)]
    cuts = [
        i
        for i, t in enumerate(tokens)
        if t.kind == BAR or (t.kind == META and i + 1 < n and tokens[i + 1].kind == NOTE)
    ]
    pairs = [(0, cuts[0])]
    last = cuts[0]
    for j in cuts[1:]:
        if j != last + 1:  # a span of one token is skipped
            pairs.append((last, j))
        last = j
    if last != n - 1:
        pairs.append((last, n - 1))
    groups: list[list[Token]] = []
    rights: list[str | None] = []
    for x, y in pairs:
        lo = x + 1 if tokens[x].kind == BAR or (x != 0 and tokens[x].kind == META) else x
        end = tokens[y]
        if end.kind == BAR or (end.kind != META and not (end.kind == NOTE and y == n - 1)):
            hi = y - 1
        else:
            hi = y
        group = tokens[lo : hi + 1]
        if group:
            groups.append(group)
            rights.append(end.src if end.kind == BAR and end.src != "|:" else None)
    has_notes = [any(t.kind == NOTE for t in g) for g in groups]
    if sum(has_notes) <= 1:
        return [([t for g in groups for t in g], None)]
    merged: list[tuple[list[Token], str | None]] = []
    i = 0
    while i < len(groups):
        if not has_notes[i] and i != len(groups) - 1:
            right = rights[i + 1] if rights[i + 1] is not None else rights[i]
            merged.append((groups[i] + groups[i + 1], right))
            i += 2
        else:
            merged.append((groups[i], rights[i]))
            i += 1
    return merged


def _read_part(tokens: list[Token], unit: int, counts: Counter[str], quirks: bool) -> _PartReading:
    """Notes, measures, meters, tempos and keys of one part, placed as music21 places them."""
    groups = _measure_groups(tokens)
    use_measures = len(groups) > 1
    reading = _PartReading(unit)
    cursor = 0
    transpose = 0
    for group, right in groups:
        in_measure = use_measures and any(t.kind == NOTE for t in group)
        base = cursor if in_measure else 0
        local = 0 if in_measure else cursor
        measure = Measure(cursor, 0, None, barline=right in _BARLINE_OBJECTS)
        measure_key: KeySig | None = None
        transpose = 0
        for token in group:
            if token.kind == META:
                tag, data = split_field(token.src)
                if tag == "M":
                    meter = parse_meter(data)
                    if meter is not None:
                        if in_measure:
                            measure.meter = meter
                        else:
                            _part_level(reading.part_meters, local, meter, use_measures)
                elif tag == "K":
                    keysig, clef_shift = parse_key(data)
                    if in_measure:  # a measure holds one key signature: the last one set
                        measure_key = keysig
                    else:
                        _part_level(reading.keys, local, keysig, use_measures)
                    if clef_shift:
                        transpose = clef_shift
                elif tag == "Q":
                    bpm = tempo_bpm(data)
                    if bpm is not None:
                        reading.tempos.append((base + local, bpm))
            elif token.kind == NOTE:
                local = _place_note(token, base, local, reading, measure, counts, quirks)
        if measure_key is not None:
            reading.keys.append((base, 0, measure_key))
        if in_measure:
            measure.length = local
            reading.measures.append(measure)
            cursor += local
        else:
            cursor = local
    reading.end = cursor
    if transpose:
        # music21 keeps the clef transposition of the last measure's K: field only
        reading.notes = [(o, p + transpose, d, t) for o, p, d, t in reading.notes]
    rebar(reading.measures, reading.notes, unit)
    return reading


def _part_level(found: list[Any], local: int, value: Any, use_measures: bool) -> None:
    """Put a time or key signature outside any measure as music21 does.

    In a tune with measures, music21 sets it as the part's own signature (at offset 0, replacing
    the previous one); without measures it appends it where the music has got to.
    """
    if use_measures:
        found[:] = [item for item in found if item[0] != 0 or item[1:2] == (0,)]
        found.insert(0, (0, 1, value) if isinstance(value, KeySig) else (0, value))
    else:
        found.append((local, 1, value) if isinstance(value, KeySig) else (local, value))


def _place_note(
    token: Token,
    base: int,
    local: int,
    reading: _PartReading,
    measure: Measure,
    counts: Counter[str],
    quirks: bool,
) -> int:
    """Add one note/chord/rest token at `local`; return the new local end."""
    if token.symbols:
        # A `"^text"`-style annotation is not a chord symbol; music21 tries to read every string
        # as one (and drops the note under a `">..."` annotation, which we keep).
        name = token.symbols[0].replace('"', "").strip()
        if quirks and re.sub("[()]", "", name).startswith(">"):
            if not token.empty and not (token.grace and not token.is_chord):
                counts[QUIRK_ANNOTATION] += 1
            return local
        if not name.startswith(_ANNOTATION):
            counts["chord_symbols_ignored"] += 1
            measure.events.append((local, 0, True, None))
    if token.is_chord and token.empty:
        return local
    if token.grace and not token.is_chord:
        if token.pitches:
            counts["grace_dropped"] += 1
        measure.events.append((local, 0, bool(token.pitches), None))
        return local
    length = token.length.numerator * (reading.unit // token.length.denominator)
    first = len(reading.notes)
    chord = tuple(range(first, first + len(token.pitches))) if token.is_chord else None
    measure.events.append((local, length, bool(token.pitches), chord))
    if token.pitches and length <= 0:
        counts["zero_duration_dropped"] += len(token.pitches)
        return local
    if len(token.pitches) > 1:
        counts["chords_split"] += 1
    if quirks and token.is_chord and token.tie is not None:
        reading.chord_tied.extend(range(first, first + len(token.pitches)))
    for pitch in token.pitches:
        reading.notes.append((base + local, pitch, length, token.tie))
    return local + length


def _part_notes(reading: _PartReading, part: int, counts: Counter[str]) -> list[Note]:
    """The part's notes, ties merged; with quirks, music21 ignores a tie after a chord."""
    notes = sorted(reading.notes, key=_onset)
    if not reading.chord_tied:
        return _merge_ties(notes, part, reading.unit, counts)
    # each note of a tied chord is tied to the same pitch after it; music21 ties none of them
    untied = list(reading.notes)
    for index in reading.chord_tied:
        onset, pitch, duration, _tie = untied[index]
        untied[index] = (onset, pitch, duration, None)
    misread = _merge_ties(sorted(untied, key=_onset), part, reading.unit, counts)
    right = _merge_ties(notes, part, reading.unit, Counter())
    if misread != right:
        counts[QUIRK_CHORD_TIE] += max(1, len(misread) - len(right))  # the ties not merged
    return misread


def _onset(note: RawNote) -> int:
    return note[0]


def _merge_ties(raw: list[RawNote], part: int, unit: int, counts: Counter[str]) -> list[Note]:
    """The reference's tie merging: a note closing a tie extends the open note of its pitch."""
    ties = TieMerger(counts)  # [onset, pitch, duration] in ticks
    for onset, pitch, duration, tie in raw:
        if not 0 <= pitch <= 127:
            counts["pitch_out_of_range_dropped"] += 1
            continue
        ties.add(onset, pitch, duration, tie)
    cache: dict[int, Fraction] = {}

    def frac(ticks: int) -> Fraction:
        value = cache.get(ticks)
        if value is None:
            value = cache[ticks] = Fraction(ticks, unit)
        return value

    return [Note(frac(o), p, frac(d), DEFAULT_VELOCITY, part) for o, p, d in ties.notes]


def _bar_lengths(reading: _PartReading, counts: Counter[str]) -> list[tuple[Fraction, Meter]]:
    """The reference's (length, meter) per measure, or per time signature without measures."""
    measures = reading.measures
    unit = reading.unit
    if not measures:
        counts["bars_from_time_signatures"] += 1
        changes = [(Fraction(o, unit), m) for o, m in reading.part_meters]
        return bars_from_time_signatures(changes, Fraction(reading.end, unit), counts)
    # music21 finds the first time signature depth-first: a measure before a part-level one.
    candidates = [(m.offset, 0, m.meter) for m in measures if m.meter is not None]
    candidates += [(o, 1, m) for o, m in reading.part_meters]
    first = min(candidates, key=lambda c: c[:2], default=None)
    if first is None:
        counts["default_meter"] += 1
        current = DEFAULT_METER
    else:
        current = first[2]
    raw: list[tuple[Fraction, Meter]] = []
    for i, measure in enumerate(measures):
        if measure.meter is not None:
            current = measure.meter
        if i + 1 < len(measures):
            length = Fraction(measures[i + 1].offset - measure.offset, unit)
        else:
            length = Fraction(measure.length, unit) if measure.length > 0 else current.length
        raw.append((length, current))
    return raw
