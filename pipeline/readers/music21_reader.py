"""music21 reader for MusicXML (.xml, .musicxml, .mxl), Humdrum (.krn) and ABC (.abc).

A collection file (an ABC book, a multi-piece kern file) yields one score per piece, its id
carrying the `X:` number. Ties become one note, chords become notes, grace notes, unpitched
(percussion) notes and chord symbols are dropped and counted. Repeats stay as written unless
`expand_repeats` asks for music21's expansion.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from pipeline.errors import ScoreParseError, ScoreValidationError
from pipeline.readers import parser_messages
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


def read_music21(
    path: Path, *, expand_repeats: bool = False, only: set[str] | None = None
) -> list[Score | ItemFailure]:
    """Parse `path` with music21: one canonical score per piece, or an ItemFailure for a piece of
    a collection that cannot be read (the others still are).

    `only` limits an ABC book to the tunes of those `X:` numbers (the fast reader's fallback);
    other files are read whole.
    """
    from music21 import converter

    if path.suffix.lower() == ".mxl":
        _check_mxl(path)
    if path.suffix.lower() == ".abc":
        tunes = split_abc_tunes(abc_text(path))
        if only is not None:
            tunes = [t for t in tunes if t[0] in only]
        if len(tunes) > 1 or (only is not None and tunes):
            # Tune by tune: music21 tokenizes a whole book at once, so one bad tune would lose all.
            out: list[Score | ItemFailure] = []
            for number, text in tunes:
                try:
                    parsed, caught = _parse(partial(converter.parseData, text, format="abc"), path)
                except ScoreParseError as exc:
                    out.append(ItemFailure(number, exc.reason, str(exc)))
                    continue
                out.extend(_convert_all(parsed, path, caught, expand_repeats, number))
            return out
    # forceSource: never read or write music21's pickle cache in its scratch folder (an unpickled
    # file from a shared temp folder could run code; our ingest has its own cache).
    parsed, caught = _parse(lambda: converter.parse(str(path), forceSource=True), path)
    return _convert_all(parsed, path, caught, expand_repeats, None)


def _parse(call: Callable[[], Any], path: Path) -> tuple[Any, list[str]]:
    """Run a music21 parse, turning its failures into ScoreParseError and recording its warnings."""
    # music21 warns (on stderr) about every oddity it repairs; record them as a count instead.
    with parser_messages.capture() as caught:
        try:
            parsed = call()
        except Exception as exc:  # music21 raises many unrelated types on malformed input
            raise ScoreParseError(
                f"{path}: music21 could not parse it: {_one_line(exc)}", _parse_reason(exc)
            ) from exc
    return parsed, list(caught)


def _convert_all(
    parsed: Any, path: Path, caught: list[str], expand_repeats: bool, number: str | None
) -> list[Score | ItemFailure]:
    """Canonical scores of every piece in a parse result (collection pieces fail one by one)."""
    from music21 import stream

    if isinstance(parsed, stream.Opus):
        pieces = list(parsed.scores)
    elif isinstance(parsed, stream.Score):
        pieces = [parsed]
    else:
        wrapper = stream.Score()
        wrapper.insert(0, parsed)
        pieces = [wrapper]
    if not pieces:
        raise ScoreParseError(f"{path}: the file holds no score", "no_scores")
    collection = number is not None or len(pieces) > 1 or path.suffix.lower() == ".abc"
    out: list[Score | ItemFailure] = []
    for index, piece in enumerate(pieces):
        item = (number if len(pieces) == 1 else None) or (
            _collection_item(piece, index) if collection else None
        )
        with parser_messages.capture() as converting:
            try:
                score = convert_music21(piece, path, item, expand_repeats=expand_repeats)
            except (ScoreParseError, ScoreValidationError) as exc:
                if not collection:
                    raise
                out.append(
                    ItemFailure(
                        item or str(index + 1), getattr(exc, "reason", "invalid_score"), str(exc)
                    )
                )
                continue
        # Parse warnings belong to the parse; the pieces of one parse share them: the first counts them.
        n_warnings = len(converting) + (len(caught) if index == 0 else 0)
        out.append(
            score.with_counts({parser_messages.PARSER_WARNINGS: n_warnings})
            if n_warnings
            else score
        )
    return out


def convert_music21(
    m21: Any, path: Path, item: str | None, *, expand_repeats: bool = False
) -> Score:
    """Convert one parsed music21 `Score` into a canonical score."""
    from music21 import stream

    counts: Counter[str] = Counter()
    m21_parts = list(m21.parts) or [m21]
    if expand_repeats:
        try:
            m21_parts = [p.expandRepeats() for p in m21_parts]
        except Exception as exc:
            raise ScoreParseError(f"{path}: repeat expansion failed: {_one_line(exc)}") from exc
        counts["repeats_expanded"] += 1
    parts: list[Part] = []
    notes: list[Note] = []
    for index, m21_part in enumerate(m21_parts):
        name = str(getattr(m21_part, "partName", None) or "")
        parts.append(Part(index, name))
        notes.extend(_part_notes(m21_part, index, counts))
    notes.sort()
    reference = next((p for p in m21_parts if p.getElementsByClass(stream.Measure)), m21_parts[0])
    raw_bars = _measure_bars(reference, counts)
    bars = make_bars(raw_bars, notes[-1].onset if notes else None, counts)
    metadata = m21.metadata
    title = ""
    composer = ""
    if metadata is not None:
        title = str(metadata.title or metadata.movementName or "")
        composer = str(metadata.composer or "")
    score_id = path.name + (f"#X:{item}" if item is not None else "")
    return Score(
        meta=ScoreMeta(score_id, title, composer, str(path), item),
        notes=tuple(notes),
        bars=bars,
        parts=tuple(parts),
        tempos=_tempos(m21),
        key=_key(m21),
        report=report_dict(counts),
    ).validate()


def _part_notes(m21_part: Any, part_index: int, counts: Counter[str]) -> list[Note]:
    """Notes of one part with ties merged, chords split and grace/unpitched notes dropped."""
    from music21 import chord, harmony, note

    flat = m21_part.flatten()
    ties = TieMerger(counts)
    for element in flat.notes:
        if isinstance(element, harmony.Harmony):
            counts["chord_symbols_ignored"] += 1
            continue
        if isinstance(element, note.Unpitched) or (
            isinstance(element, chord.ChordBase) and not isinstance(element, chord.Chord)
        ):
            counts["unpitched_dropped"] += len(getattr(element, "notes", ())) or 1
            continue
        components = list(element.notes) if isinstance(element, chord.Chord) else [element]
        if element.duration.isGrace:
            counts["grace_dropped"] += len(components)
            continue
        onset = Fraction(element.offset).limit_denominator(10_000)
        duration = Fraction(element.duration.quarterLength).limit_denominator(10_000)
        if duration <= 0:
            counts["zero_duration_dropped"] += len(components)
            continue
        if len(components) > 1:
            counts["chords_split"] += 1
        velocity = _velocity(element)
        for component in components:
            pitch = int(component.pitch.midi)
            if not 0 <= pitch <= 127:
                counts["pitch_out_of_range_dropped"] += 1
                continue
            tie = component.tie if component.tie is not None else element.tie
            ties.add(onset, pitch, duration, tie.type if tie is not None else None, velocity)
    return [Note(o, p, d, v, part_index) for o, p, d, v in ties.notes]


def _measure_bars(m21_part: Any, counts: Counter[str]) -> list[tuple[Fraction, Meter]]:
    """(length, meter) of every measure of the reference part, lengths from measure offsets."""
    from music21 import meter as m21meter
    from music21 import stream

    measures = list(m21_part.getElementsByClass(stream.Measure))
    if not measures:
        # No written bar lines (some ABC tunes): bars follow the time signatures.
        counts["bars_from_time_signatures"] += 1
        flat = m21_part.flatten()
        changes = [
            (
                Fraction(ts.offset).limit_denominator(10_000),
                Meter(int(ts.numerator), int(ts.denominator)),
            )
            for ts in flat.getElementsByClass(m21meter.TimeSignature)
        ]
        end = Fraction(flat.highestTime).limit_denominator(10_000)
        return bars_from_time_signatures(changes, end, counts)
    current: Meter | None = None
    first_ts = m21_part.recurse().getElementsByClass(m21meter.TimeSignature).first()
    if first_ts is not None:
        current = Meter(int(first_ts.numerator), int(first_ts.denominator))
    else:
        counts["default_meter"] += 1
        current = DEFAULT_METER
    raw: list[tuple[Fraction, Meter]] = []
    offsets = [Fraction(m.offset).limit_denominator(10_000) for m in measures]
    for i, measure in enumerate(measures):
        ts = measure.timeSignature
        if ts is not None:
            current = Meter(int(ts.numerator), int(ts.denominator))
        if i + 1 < len(measures):
            length = offsets[i + 1] - offsets[i]
        else:
            length = Fraction(measure.duration.quarterLength).limit_denominator(10_000)
            if length <= 0:
                length = current.length
        raw.append((length, current))
    return raw


def _tempos(m21: Any) -> tuple[TempoChange, ...]:
    """Metronome marks with a number, as quarter-note BPM at their offset, one per offset."""
    from music21 import tempo

    found: dict[Fraction, float] = {}
    for mark in m21.recurse().getElementsByClass(tempo.MetronomeMark):
        try:
            bpm = mark.getQuarterBPM()
        except Exception:  # marks without a number or referent
            bpm = None
        if not bpm or bpm <= 0:
            continue
        onset = Fraction(mark.getOffsetInHierarchy(m21)).limit_denominator(10_000)
        found.setdefault(onset, float(bpm))
    return tuple(TempoChange(onset, bpm) for onset, bpm in sorted(found.items()))


def _key(m21: Any) -> str | None:
    """The first key (`"E- major"`) or key signature (`"ks:-3"`) written in the score."""
    from music21 import key

    first = m21.recurse().getElementsByClass(key.KeySignature).first()
    if first is None:
        return None
    if isinstance(first, key.Key):
        return f"{first.tonic.name} {first.mode}"
    return f"ks:{first.sharps:+d}"


def _velocity(element: Any) -> int:
    velocity = getattr(element.volume, "velocity", None) if element.hasVolumeInformation() else None
    return int(min(127, max(1, velocity))) if velocity else DEFAULT_VELOCITY


def _collection_item(piece: Any, index: int) -> str:
    """The `X:` number of a collection item (its position from 1 when the file has none)."""
    number = getattr(piece.metadata, "number", None) if piece.metadata is not None else None
    return str(number) if number not in (None, "") else str(index + 1)


def _check_mxl(path: Path) -> None:
    """A compressed MusicXML file must be a zip holding a MusicXML document."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ScoreParseError(f"{path}: not a zip archive ({_one_line(exc)})", "bad_zip") from exc
    if not any(
        n.lower().endswith((".xml", ".musicxml")) and not n.startswith("META-INF/") for n in names
    ):
        raise ScoreParseError(
            f"{path}: the zip holds no MusicXML document ({len(names)} members)", "not_musicxml_zip"
        )


def _parse_reason(exc: BaseException) -> str:
    """A specific quarantine reason for a music21 failure."""
    if isinstance(exc, UnicodeError):
        return "encoding"
    if isinstance(exc, ElementTree.ParseError):
        return "malformed_xml"
    if isinstance(exc, zipfile.BadZipFile):
        return "bad_zip"
    return "parse_error"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
