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
    key = best_key(score.notes)
    try:
        staves = [
            _staff(score, upper, clef.TrebleClef(), "P1-Staff1", key, tempos=True),
            _staff(score, lower, clef.BassClef(), "P1-Staff2", key, tempos=False),
        ]
        for staff in staves:
            out.insert(0, staff)
        out.insert(0, layout.StaffGroup(staves, name="Piano", symbol="brace", barTogether=True))
        out.makeNotation(inPlace=True)
        with atomic_path(Path(path)) as partial:
            out.write("musicxml", fp=str(partial))
    except Exception as exc:  # music21's exporter raises assorted types on odd rhythms
        raise GnmError(f"{path}: music21 could not write MusicXML: {exc}") from exc


def _staff(
    score: Score,
    notes: Sequence[Note],
    staff_clef: Any,
    ident: str,
    key: tuple[int, bool],
    tempos: bool,
) -> Any:
    """One staff of the grand staff: its clef, key signature (`key`: sharps, minor; every pitch
    spelled in it), the meters, and its notes as voices of chords."""
    from music21 import chord, instrument, meter, note, stream, tempo
    from music21 import key as m21key

    staff = stream.PartStaff(id=ident)
    staff.insert(0, instrument.Piano())
    staff.insert(0, staff_clef)
    staff.insert(0, m21key.KeySignature(key[0]))
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
            spelled = [_spelled(p, *key) for p in sorted(pitches)]
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


def key_signature(notes: Sequence[Note]) -> int:
    """Sharps (> 0) or flats (< 0) of the key that best fits the notes (see `best_key`)."""
    return best_key(notes)[0]


def best_key(notes: Sequence[Note]) -> tuple[int, bool]:
    """(sharps or -flats, minor) of the key whose Krumhansl-Kessler profile correlates best with
    the notes' duration-weighted pitch classes (Krumhansl-Schmuckler); (0, False) without notes."""
    weights = [0.0] * 12
    for n in notes:
        weights[n.pitch % 12] += float(n.duration)
    if not any(weights):
        return 0, False
    best, found = -2.0, (0, False)
    for tonic in range(12):
        for profile, minor in ((_MAJOR, False), (_MINOR, True)):
            r = _correlation(weights, [profile[(pc - tonic) % 12] for pc in range(12)])
            if r > best:
                fifths = (tonic + 3 if minor else tonic) * 7 % 12  # of the (relative) major
                best, found = r, (fifths - 12 if fifths > 6 else fifths, minor)
    return found


def _correlation(a: Sequence[float], b: Sequence[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    return cov / math.sqrt(va * vb) if va and vb else -1.0


def spelling(midi: int, sharps: int, minor: bool) -> tuple[str, int, int]:
    """(letter, alteration in semitones, octave) of a MIDI pitch in a key.

    Each pitch class takes the name whose place on the circle of fifths lies in the key's window:
    from 5 fifths below to 6 above the key's own place for a major key, from 3 below to 8 above
    (the relative major's) for a minor one, so that a minor key's raised sixth and seventh are
    sharps (C-sharp in D minor, F-sharp in G minor) and C major has B-flat, not A-sharp.
    """
    low = sharps - (3 if minor else 5)
    place = (midi % 12) * 7 % 12  # 7 is its own inverse mod 12: the fifths from C
    place = place - 12 if place > low + 11 else place
    place = place + 12 if place < low else place
    letter = "FCGDAEB"[(place + 1) % 7]
    alter = (place + 1) // 7
    return letter, alter, (midi - alter) // 12 - 1


def _spelled(midi: int, sharps: int, minor: bool) -> Any:
    """A music21 pitch for a MIDI number, spelled in the key (any octave, -1 included)."""
    from music21 import pitch

    letter, alter, octave = spelling(midi, sharps, minor)
    spelled = pitch.Pitch(letter + ("#" * alter if alter > 0 else "-" * -alter))
    spelled.octave = octave
    return spelled


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
