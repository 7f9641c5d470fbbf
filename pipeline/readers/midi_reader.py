"""miditoolkit reader for Standard MIDI Files (.mid, .midi) with time-signature and tempo events.

Onsets and durations become exact quarter-note fractions of the file's ticks per beat. Drum
tracks are unpitched and dropped (counted); zero-length notes are dropped (counted where they
reach us: miditoolkit already discards a note-on and note-off on the same tick when it loads). Bars follow
the time-signature events: a change that falls inside a bar cuts that bar short, which meter
normalisation then handles; a file without time signatures is read as 4/4 (counted).
"""

from __future__ import annotations

import io
from collections import Counter
from fractions import Fraction
from pathlib import Path

from pipeline.errors import ScoreParseError
from pipeline.readers.common import (
    MAX_MIDI_BYTES,
    bars_from_time_signatures,
    make_bars,
    read_capped,
    report_dict,
)
from pipeline.score import Meter, Note, Part, Score, ScoreMeta, TempoChange


def read_midi(path: Path, *, expand_repeats: bool = False) -> list[Score]:
    """Parse a MIDI file into one canonical score (`expand_repeats` has no meaning for MIDI)."""
    from miditoolkit import MidiFile

    try:
        data = read_capped(path, MAX_MIDI_BYTES, "MIDI file")
    except OSError as exc:
        raise ScoreParseError(
            f"{path}: not a readable MIDI file: {exc.strerror}", "bad_midi"
        ) from exc
    try:
        midi = MidiFile(file=io.BytesIO(data))
    except Exception as exc:  # mido raises EOFError, OSError, ValueError, KeyError, ...
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ScoreParseError(
            f"{path}: not a readable MIDI file: {detail[:200]}", "bad_midi"
        ) from exc
    tpb = int(midi.ticks_per_beat)
    if tpb <= 0:
        raise ScoreParseError(
            f"{path}: MIDI header gives {tpb} ticks per beat (must be positive)", "bad_midi"
        )
    counts: Counter[str] = Counter()
    parts: list[Part] = []
    notes: list[Note] = []
    for index, instrument in enumerate(midi.instruments):
        parts.append(
            Part(index, instrument.name or "", int(instrument.program), instrument.is_drum)
        )
        if instrument.is_drum:
            counts["unpitched_dropped"] += len(instrument.notes)
            continue
        for n in instrument.notes:
            if n.end <= n.start:
                counts["zero_duration_dropped"] += 1
                continue
            if not 0 <= n.pitch <= 127:
                counts["pitch_out_of_range_dropped"] += 1
                continue
            velocity = min(127, max(1, int(n.velocity)))
            notes.append(
                Note(
                    Fraction(n.start, tpb),
                    int(n.pitch),
                    Fraction(n.end - n.start, tpb),
                    velocity,
                    index,
                )
            )
    notes.sort()
    if not parts:
        parts.append(Part(0))
    end = max((n.end for n in notes), default=Fraction(0))
    raw_bars = _bars_from_signatures(midi, tpb, end, counts)
    bars = make_bars(
        raw_bars, notes[-1].onset if notes else None, counts, pickup_from_next_meter=True
    )
    tempos: dict[Fraction, float] = {}
    for change in midi.tempo_changes:
        if change.tempo > 0:
            tempos[Fraction(int(change.time), tpb)] = float(change.tempo)
    key = midi.key_signature_changes[0].key_name if midi.key_signature_changes else None
    return [
        Score(
            meta=ScoreMeta(path.name, path.stem, "", str(path), None),
            notes=tuple(notes),
            bars=bars,
            parts=tuple(parts),
            tempos=tuple(TempoChange(t, bpm) for t, bpm in sorted(tempos.items())),
            key=key,
            report=report_dict(counts),
        ).validate()
    ]


def _bars_from_signatures(
    midi: object, tpb: int, end: Fraction, counts: Counter[str]
) -> list[tuple[Fraction, Meter]]:
    """(length, meter) of every bar implied by the time-signature events up to `end`."""
    changes: list[tuple[Fraction, Meter]] = []
    for ts in getattr(midi, "time_signature_changes", []):
        if ts.numerator <= 0 or ts.denominator <= 0:
            counts["invalid_time_signature_ignored"] += 1
            continue
        changes.append((Fraction(int(ts.time), tpb), Meter(int(ts.numerator), int(ts.denominator))))
    return bars_from_time_signatures(changes, end, counts)
