"""Writing canonical scores to MIDI (miditoolkit) and MusicXML (music21).

Both writers keep every note's onset, pitch and duration and every bar's meter, so that reading
the file back gives the same notes and bars (tested). MusicXML needs non-overlapping voices: notes
are laid greedily into as few parts as possible, each a sequence of chords that never overlap.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

from pipeline.errors import GnmError
from pipeline.score import Note, Score

MIDI_TICKS_PER_BEAT = 480
WRITABLE_EXTENSIONS = (".mid", ".midi", ".musicxml", ".xml", ".mxl")


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
        if bar.meter != previous:
            midi.time_signature_changes.append(
                TimeSignature(bar.meter.numerator, bar.meter.denominator, int(bar.start * tpb))
            )
            previous = bar.meter
    for change in score.tempos or ():
        midi.tempo_changes.append(TempoChange(change.bpm, int(change.onset * tpb)))
    midi.max_tick = int(score.end * tpb)
    midi.dump(str(path))


def write_musicxml(score: Score, path: str | Path) -> None:
    """Write MusicXML (compressed for .mxl) through music21, one part per voice layer."""
    from music21 import chord, instrument, metadata, meter, note, stream, tempo

    out = stream.Score()
    out.metadata = metadata.Metadata(
        title=score.meta.title or score.meta.id, composer=score.meta.composer or ""
    )
    layers = _voice_layers(score.notes)
    for index, layer in enumerate(layers or [[]]):
        part = stream.Part(id=f"P{index + 1}")
        part.insert(0, instrument.Piano())
        previous = None
        for bar in score.bars:
            if bar.meter != previous:
                part.insert(_offset(bar.start), meter.TimeSignature(str(bar.meter)))
                previous = bar.meter
        if index == 0:
            for change in score.tempos:
                part.insert(_offset(change.onset), tempo.MetronomeMark(number=round(change.bpm, 2)))
        for onset, duration, pitches in layer:
            element = note.Note(pitches[0]) if len(pitches) == 1 else chord.Chord(sorted(pitches))
            element.duration.quarterLength = _offset(duration)
            part.insert(_offset(onset), element)
        # Rests fill the gaps so that every measure is complete.
        end = _offset(score.bars[-1].end) if score.bars else 0
        filled = part.makeRests(
            fillGaps=True,
            inPlace=False,
            timeRangeFromBarDuration=False,
            refStreamOrTimeRange=[0, end],
        )
        out.insert(0, filled)
    try:
        out.makeNotation(inPlace=True)
        out.write("musicxml", fp=str(path))
    except Exception as exc:  # music21's exporter raises assorted types on odd rhythms
        raise GnmError(f"{path}: music21 could not write MusicXML: {exc}") from exc


def _offset(value: Fraction) -> Fraction | float:
    return float(value) if value.denominator & (value.denominator - 1) == 0 else value


def _voice_layers(notes: tuple[Note, ...]) -> list[list[tuple[Fraction, Fraction, list[int]]]]:
    """Group notes into chords (same onset and duration) laid into non-overlapping layers."""
    chords: dict[tuple[Fraction, Fraction], list[int]] = {}
    for n in notes:
        pitches = chords.setdefault((n.onset, n.duration), [])
        if n.pitch not in pitches:
            pitches.append(n.pitch)
    layers: list[list[tuple[Fraction, Fraction, list[int]]]] = []
    ends: list[Fraction] = []
    for (onset, duration), pitches in sorted(chords.items()):
        for i, end in enumerate(ends):
            if end <= onset:
                layers[i].append((onset, duration, pitches))
                ends[i] = onset + duration
                break
        else:
            layers.append([(onset, duration, pitches)])
            ends.append(onset + duration)
    return layers
