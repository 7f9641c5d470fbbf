"""Writing canonical scores to MIDI (miditoolkit) and MusicXML (music21).

Both writers keep every note's onset, pitch and duration and every bar, so that reading the file
back gives the same notes and bars (tested). MIDI writes a short bar (a pickup) as a time
signature of its own length; MusicXML needs full bars (it refuses others) and is a piano score on
one grand staff, each staff's notes laid greedily into as few voices as possible, each a sequence
of chords. A
file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from pipeline.errors import GnmError
from pipeline.io.atomic import atomic_path
from pipeline.score import Bar, Meter, Note, Score

MIDI_TICKS_PER_BEAT = 480
WRITABLE_EXTENSIONS = (".mid", ".midi", ".musicxml", ".xml", ".mxl")
STAFF_SPLIT = 60  # middle C: from here up on the treble staff of the grand staff


def write_score(score: Score, path: str | Path) -> Path:
    """Write `score` in the format its extension names (.mid/.midi, .musicxml/.xml/.mxl)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".mid", ".midi"):
        write_midi(score, path)
    elif suffix in (".musicxml", ".xml", ".mxl"):
        write_musicxml(score, path)
    else:
        raise GnmError(
            f"{path}: cannot write '{suffix or '(none)'}' (use one of {', '.join(WRITABLE_EXTENSIONS)})"
        )
    return path


def _ticks_per_beat(score: Score) -> int:
    tpb = MIDI_TICKS_PER_BEAT
    for note in score.notes:
        for value in (note.onset, note.duration):
            if tpb % value.denominator:
                tpb = math.lcm(tpb, value.denominator)
    return tpb


def write_midi(score: Score, path: str | Path) -> None:
    """Write a type-1 MIDI file: one track per part, time signatures at meter changes, tempo map."""
    from miditoolkit import Instrument, MidiFile, TempoChange, TimeSignature
    from miditoolkit import Note as MidiNote

    tpb = _ticks_per_beat(score)
    midi = MidiFile(ticks_per_beat=tpb)
    for part in score.parts:
        midi.instruments.append(
            Instrument(program=part.program, is_drum=part.is_drum, name=part.name)
        )
    for note in score.notes:
        start = int(note.onset * tpb)
        midi.instruments[note.part].notes.append(
            MidiNote(
                velocity=note.velocity,
                pitch=note.pitch,
                start=start,
                end=start + int(note.duration * tpb),
            )
        )
    midi.instruments = [inst for inst in midi.instruments if inst.notes] or midi.instruments[:1]
    previous = None
    for bar in score.bars:
        # MIDI has no pickups or short bars: a bar whose length differs from its meter gets a
        # signature of its own length (a 1/4 bar before 4/4), which the reader reads back as such.
        signature = bar.meter if bar.complete else _signature_of_length(bar)
        if signature != previous:
            midi.time_signature_changes.append(
                TimeSignature(signature.numerator, signature.denominator, int(bar.start * tpb))
            )
            previous = signature
    for change in score.tempos or ():
        midi.tempo_changes.append(TempoChange(change.bpm, int(change.onset * tpb)))
    midi.max_tick = int(score.end * tpb)
    with atomic_path(Path(path)) as partial:
        midi.dump(str(partial))


def write_musicxml(score: Score, path: str | Path) -> None:
    """Write MusicXML (compressed for .mxl) through music21 as a piano score on one grand staff.

    Notes from middle C up go on the treble staff, the others on the bass staff; each staff's
    notes are laid into as few voices as possible, each a sequence of chords. The key signature
    is the best-fitting key of the notes (`key_signature`), black keys spelled to match. (The token
    representation has no instruments, so a decoded score is one keyboard part.)

    Every bar must be a full bar of its meter (what decoding and meter normalisation give);
    a pickup or short bar is refused rather than silently written as a full bar: write MIDI, or
    normalise the meters first.
    """
    from music21 import clef, layout, metadata, stream

    short = next((i for i, b in enumerate(score.bars) if not b.complete), None)
    if short is not None:
        bar = score.bars[short]
        raise GnmError(
            f"{path}: bar {short} is {bar.length} quarters of {bar.meter}; MusicXML export needs full "
            "bars (normalise meters first, or write .mid)"
        )

    out = stream.Score()
    out.metadata = metadata.Metadata(
        title=score.meta.title or score.meta.id, composer=score.meta.composer or ""
    )
    upper = [n for n in score.notes if n.pitch >= STAFF_SPLIT]
    lower = [n for n in score.notes if n.pitch < STAFF_SPLIT]
    sharps = key_signature(score.notes)
    staves = [
        _staff(score, upper, clef.TrebleClef(), "P1-Staff1", sharps, tempos=True),
        _staff(score, lower, clef.BassClef(), "P1-Staff2", sharps, tempos=False),
    ]
    for staff in staves:
        out.insert(0, staff)
    out.insert(0, layout.StaffGroup(staves, name="Piano", symbol="brace", barTogether=True))
    try:
        out.makeNotation(inPlace=True)
        with atomic_path(Path(path)) as partial:
            out.write("musicxml", fp=str(partial))
    except Exception as exc:  # music21's exporter raises assorted types on odd rhythms
        raise GnmError(f"{path}: music21 could not write MusicXML: {exc}") from exc


def _staff(
    score: Score, notes: Sequence[Note], staff_clef: Any, ident: str, sharps: int, tempos: bool
) -> Any:
    """One staff of the grand staff: its clef, key signature (`sharps`; black keys spelled to
    match), the meters, and its notes as voices of chords."""
    from music21 import chord, instrument, key, meter, note, stream, tempo

    staff = stream.PartStaff(id=ident)
    staff.insert(0, instrument.Piano())
    staff.insert(0, staff_clef)
    staff.insert(0, key.KeySignature(sharps))
    previous = None
    for bar in score.bars:
        if bar.meter != previous:
            staff.insert(_offset(bar.start), meter.TimeSignature(str(bar.meter)))
            previous = bar.meter
    if tempos:
        for change in score.tempos:
            staff.insert(_offset(change.onset), tempo.MetronomeMark(number=round(change.bpm, 2)))
    end = _offset(score.bars[-1].end) if score.bars else 0
    for number, layer in enumerate(_voice_layers(notes) or [[]], start=1):
        voice = stream.Voice(id=str(number))
        for onset, duration, pitches in layer:
            spelled = [_spelled(p, sharps < 0) for p in sorted(pitches)]
            element = note.Note(spelled[0]) if len(spelled) == 1 else chord.Chord(spelled)
            element.duration.quarterLength = _offset(duration)
            voice.insert(_offset(onset), element)
        # Rests fill the gaps so that every measure of every voice is complete.
        voice.makeRests(
            fillGaps=True,
            inPlace=True,
            timeRangeFromBarDuration=False,
            refStreamOrTimeRange=[0, end],
        )
        if number > 1:  # an inner voice's rests are not printed: they only clutter the staff
            for rest in voice.getElementsByClass(note.Rest):
                rest.style.hideObjectOnPrint = True
        staff.insert(0, voice)
    return staff


# Krumhansl-Kessler key profiles (major, minor), from C.
_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "D-", "D", "E-", "E", "F", "G-", "G", "A-", "A", "B-", "B")


def key_signature(notes: Sequence[Note]) -> int:
    """Sharps (> 0) or flats (< 0) of the key that best fits the notes' duration-weighted
    pitch classes (Krumhansl-Schmuckler); 0 without notes."""
    weights = [0.0] * 12
    for n in notes:
        weights[n.pitch % 12] += float(n.duration)
    if not any(weights):
        return 0
    best, sharps = -2.0, 0
    for tonic in range(12):
        for profile, relative_major in ((_MAJOR, tonic), (_MINOR, (tonic + 3) % 12)):
            rotated = [profile[(pc - tonic) % 12] for pc in range(12)]
            r = _correlation(weights, rotated)
            if r > best:
                fifths = relative_major * 7 % 12
                best, sharps = r, fifths - 12 if fifths > 6 else fifths
    return sharps


def _correlation(a: Sequence[float], b: Sequence[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    return cov / math.sqrt(va * vb) if va and vb else -1.0


def _spelled(midi: int, flats: bool) -> Any:
    """A music21 pitch for a MIDI number, black keys spelled as flats or as sharps."""
    from music21 import pitch

    names = _FLAT_NAMES if flats else _SHARP_NAMES
    return pitch.Pitch(f"{names[midi % 12]}{midi // 12 - 1}")


def _signature_of_length(bar: Bar) -> Meter:
    """A time signature exactly as long as `bar`, in its meter's denominator when possible."""
    for den in (bar.meter.denominator, 4, 8, 16, 32, 64):
        num = bar.length * den / 4
        if num.denominator == 1:
            return Meter(num.numerator, den)
    return bar.meter  # a length no power-of-two signature expresses (a tuplet-long bar)


def _offset(value: Fraction) -> Fraction | float:
    return float(value) if value.denominator & (value.denominator - 1) == 0 else value


def _voice_layers(notes: Sequence[Note]) -> list[list[tuple[Fraction, Fraction, list[int]]]]:
    """Group notes into chords (same onset and duration) laid into non-overlapping layers.

    A pitch sounding twice at once (a unison of two parts) goes into a second chord, so that
    no note is lost.
    """
    chords: dict[tuple[Fraction, Fraction, int], list[int]] = {}
    for n in notes:
        copy = 0
        while n.pitch in chords.setdefault((n.onset, n.duration, copy), []):
            copy += 1
        chords[(n.onset, n.duration, copy)].append(n.pitch)
    layers: list[list[tuple[Fraction, Fraction, list[int]]]] = []
    ends: list[Fraction] = []
    for (onset, duration, _), pitches in sorted(chords.items()):
        for i, end in enumerate(ends):
            if end <= onset:
                layers[i].append((onset, duration, pitches))
                ends[i] = onset + duration
                break
        else:
            layers.append([(onset, duration, pitches)])
            ends.append(onset + duration)
    return layers
