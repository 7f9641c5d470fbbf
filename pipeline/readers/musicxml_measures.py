"""One MusicXML part, measure by measure, in integer ticks: notes, measure lengths, meters, tempos, keys.

Times are ints over a tick base `L` that every `<divisions>` of the file divides (no Fraction per
note). Measure lengths follow music21's PartParser, the reference: a measure lasts as long as its
latest element reaches (a trailing `<forward>` alone does not count), an empty measure lasts its
time signature, an overfull one by a non-round amount is cut to it, and a lone whole or breve
rest stretches or shrinks to the bar. Staff and voice numbers are kept so that the builder can
split a multi-staff part into one part per staff as music21 does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple
from xml.etree.ElementTree import Element

from pipeline.errors import ScoreParseError, Unsupported
from pipeline.readers.musicxml_elements import (
    ALTERING,
    accidental_pitch,
    metronome_bpm,
    midi_pitch,
    note_velocity,
    parse_meter,
    quarter_bpm,
    read_int,
    read_key,
)
from pipeline.score import Meter

_DIRECTION_MARKS = {"metronome", "words", "rehearsal", "segno", "coda"}
MAX_MEASURE_QUARTERS = 10_000  # bounds the bars a hostile file can make us build
DEFAULT_DIVISIONS = 10080  # music21's divisions before any <divisions>


class NoteEvent(NamedTuple):
    """A sounding note in ticks; `voice` and `seq` order notes of one onset as music21 does."""

    onset: int
    voice: str
    seq: int
    pitch: int
    duration: int
    tie: str | None
    velocity: int
    staff: int


@dataclass(slots=True)
class _Rest:
    """A rest as music21 places it (Finale's <forward> makes hidden ones): the lone-rest rule reads
    its written type; its end counts for the measure's length."""

    pos: int
    dur: int
    staff: int
    full: bool = False  # measure="yes" with no type, or a whole or breve type
    kind: str = ""
    dots: int = 0
    tuplet: bool = False


class MeasureInfo(NamedTuple):
    """A measure's offset (ticks) and its time signatures at offset 0 as (staff, meter)."""

    offset: int
    meters: tuple[tuple[int, Meter], ...]


class PartReader:
    """Reads the measures of one <part> in order (call `measure` per element, then read fields)."""

    def __init__(
        self, ticks: int, counts: Counter[str], finale: bool, quirks: frozenset[str]
    ) -> None:
        self.L = ticks  # ticks per quarter note
        self.counts = counts
        self.finale = finale
        self.quirks = quirks  # the music21 misreadings to reproduce (see `_Quirks`)
        # quirks only: event index -> the tie music21 lends it from a tied note of its chord
        self.lent: dict[int, str] = {}
        self.unit = ticks // DEFAULT_DIVISIONS  # ticks per division
        self.offset = 0  # music21's lastMeasureOffset
        self.ts_len = 4 * ticks  # the bar length of the last time signature at offset 0
        self.events: list[NoteEvent] = []
        self.measures: list[MeasureInfo] = []
        self.tempos: list[tuple[int, int, int, float]] = []  # onset, seq, staff, quarter BPM
        self.keys: list[tuple[int, int, str | None, int]] = []  # staff, fifths, mode, seq
        self.first_meters: list[tuple[int, Meter]] = []  # every time signature, in order
        self.staff_keys: set[int] = set()
        self.max_staves = 1
        self.last_highs: dict[int, int] = {}
        self.seq = 0

    def _divisions(self, text: str | None) -> None:
        divisions = read_int(text, "divisions")
        if divisions <= 0 or self.L % divisions:
            raise Unsupported("musicxml:divisions", repr(text))
        self.unit = self.L // divisions

    def measure(self, measure: Element) -> None:
        """Read one <measure>: its notes, elements and length, advancing the part's offset."""
        L, counts, unit, events = self.L, self.counts, self.unit, self.events
        base = self.offset
        pos = 0
        highs: dict[int, int] = {0: 0}
        rests: list[_Rest] = []
        n_rests = n_notes = 0
        full_rest = False
        meters: list[tuple[int, Meter]] = []
        voices: set[str] = set()
        last_voice = ""
        chord_pos = chord_dur = chord_size = chord_staff = 0
        head = -1
        forward_rest: _Rest | None = None
        any_note = False
        seq = self.seq
        q = _Quirks(self) if self.quirks else None
        tag = ""
        for el in measure:
            prev_tag, tag = tag, el.tag
            if tag == "note":
                any_note = True
                forward_rest = None
                pitch_el = None
                dur = 0
                is_chord = is_rest = grace = unpitched = False
                ties: list[str | None] = []
                voice = staff_text = type_text = None
                rest_el = None
                dots = 0
                tuplet = False
                accidental = None
                for child in el:
                    ctag = child.tag
                    if ctag == "pitch":
                        pitch_el = child
                    elif ctag == "duration":
                        dur = read_int(child.text, "duration") * unit
                    elif ctag == "voice":
                        voice = child.text
                    elif ctag == "staff":
                        staff_text = child.text
                    elif ctag == "chord":
                        is_chord = True
                    elif ctag == "rest":
                        is_rest = True
                        rest_el = child
                    elif ctag == "tie":
                        ties.append(child.get("type"))
                    elif ctag == "grace":
                        grace = True
                    elif ctag == "unpitched":
                        unpitched = True
                    elif ctag == "type":
                        type_text = child.text
                    elif ctag == "dot":
                        dots += 1
                    elif ctag == "time-modification":
                        tuplet = True
                    elif ctag == "accidental":
                        accidental = child.text
                staff = _staff(staff_text)
                if voice is not None:
                    voice = voice.strip()
                    if voice:
                        voices.add(voice)
                        last_voice = voice
                if grace:
                    dur = 0
                written_chord = is_chord
                if q is not None and q.detach and is_chord and prev_tag != "note":
                    # music21 groups a <chord/> note only with the <note> right before it
                    is_chord = False
                    if dur > 0:  # it then sounds later, and so does what follows
                        counts["m21_quirk:detached-chord-note"] += 1
                if is_chord:  # a chord sounds for its first note's duration, on its staff
                    staff = chord_staff
                    onset = chord_pos
                    dur = chord_dur
                    end = chord_pos + chord_dur
                    chord_size += 1
                    if q is not None and q.rest_head is not None and chord_dur > 0:
                        # music21 makes a chord of the rest and this note: the rest sounds C4
                        rests.remove(q.rest_head)
                        n_rests -= 1
                        n_notes += 1
                        head = len(events)
                        seq = q.rest_to_c4(seq, chord_staff)
                    if chord_size == 2:
                        if not is_rest or (q is not None and q.rest_c4):
                            counts["chords_split"] += 1
                        if head >= 0 and events[head].velocity != 80:
                            # music21 gives a chord no velocity of its own (its head's is lost)
                            events[head] = events[head]._replace(velocity=80)
                else:
                    chord_size = 1
                    chord_staff = staff
                    head = -1
                    if q is not None:
                        q.new_chord()
                    onset = chord_pos = pos
                    chord_dur = dur
                    end = pos + dur
                    pos = end
                if staff:
                    self.staff_keys.add(staff)
                if is_rest:
                    if q is not None and q.rest_c4:
                        if written_chord:  # music21 reads a rest in a chord as C4
                            if dur > 0:
                                v = voice or last_voice
                                seq = q.c4(seq, base + onset, dur, staff, v)
                                _reach(highs, staff, end)
                            continue
                        q.rest_head = None
                    if not is_chord:
                        n_rests += 1
                        full = rest_el is not None and rest_el.get("measure") == "yes"
                        kind = (type_text or "").strip()
                        if full and kind not in ("", "whole", "breve"):
                            full = False
                        full_rest = full_rest or full
                        rests.append(_Rest(onset, dur, staff, full, kind, dots, tuplet))
                        if q is not None and q.rest_c4:
                            q.rest_head = rests[-1]
                            q.rest_voice = voice or last_voice
                    continue
                if q is not None:
                    q.rest_head = None
                if end > highs.get(staff, -1):
                    highs[staff] = end
                if not is_chord:
                    n_notes += 1
                if grace:
                    counts["grace_dropped"] += 1
                    continue
                if unpitched:
                    counts["unpitched_dropped"] += 1
                    continue
                if pitch_el is None:
                    counts["pitchless_notes_dropped"] += 1
                    continue
                if dur <= 0:
                    counts["zero_duration_dropped"] += 1
                    continue
                pitch = midi_pitch(pitch_el)
                if (
                    accidental is not None
                    and accidental.strip() in ALTERING
                    and pitch_el.find("alter") is None
                ):  # music21 sounds the accidental; <alter> is the pitch, <accidental> display
                    counts["accidental_without_alter"] += 1
                if q is not None and q.accidental and accidental is not None:
                    sounded = accidental_pitch(pitch, pitch_el, accidental)
                    if sounded != pitch:
                        counts["m21_quirk:accidental-sounded"] += 1
                        pitch = sounded
                tie = None
                if ties:  # music21's reading: one type, stop+start = continue, else start
                    types = [t for t in ties if t is not None]
                    if len(types) == 1:
                        tie = types[0]
                    else:
                        tie = "continue" if "start" in types and "stop" in types else "start"
                if (
                    q is not None and q.lend
                ):  # before the range check: a dropped note's tie is lent too
                    q.chord_note(tie, len(events) if 0 <= pitch <= 127 else -1)
                if not 0 <= pitch <= 127:
                    counts["pitch_out_of_range_dropped"] += 1
                    continue
                velocity = 80
                if not written_chord and (dynamics := el.get("dynamics")) is not None:
                    velocity = note_velocity(dynamics)
                seq += 1
                if not is_chord:
                    head = len(events)
                events.append(
                    NoteEvent(
                        base + onset, voice or last_voice, seq, pitch, dur, tie, velocity, staff
                    )
                )
            elif tag == "backup":
                text = _duration_text(el)
                if text:
                    pos = max(pos - read_int(text, "duration") * unit, 0)
            elif tag == "forward":
                text = _duration_text(el)
                voice_el = el.find("voice")
                if voice_el is not None and voice_el.text and voice_el.text.strip():
                    voices.add(voice_el.text.strip())
                if text:
                    change = read_int(text, "duration") * unit
                    if self.finale:  # music21 turns Finale's <forward> into hidden rests
                        staff = _staff(el.findtext("staff"))
                        # music21's Rest(quarterLength=0) is a quarter rest
                        forward_rest = _Rest(pos, change or L, staff)
                        rests.append(forward_rest)
                    pos += change
            elif tag == "direction":
                self._direction(el, base + pos, pos, highs, seq)
                seq += 1
            elif tag == "attributes":
                for child in el:
                    ctag = child.tag
                    if ctag == "divisions":
                        self._divisions(child.text)
                        unit = self.unit
                    elif ctag == "time":
                        meter = parse_meter(child)
                        staff = _number(child, 0)
                        if meter is not None:
                            self.first_meters.append((staff, meter))
                            if pos == 0:
                                meters.append((staff, meter))
                        self.staff_keys.add(staff)
                        _reach(highs, staff, pos)
                    elif ctag == "key":
                        staff = _number(child, 0)
                        self.staff_keys.add(staff)
                        self.keys.append((staff, *read_key(child), seq))
                        seq += 1
                        _reach(highs, staff, pos)
                    elif ctag == "clef":
                        staff = _number(child, 1)
                        self.staff_keys.add(staff)
                        _reach(highs, staff, pos)
                    elif ctag == "staves":
                        self.max_staves = max(self.max_staves, read_int(child.text, "staves"))
            elif tag == "harmony":
                counts["chord_symbols_ignored"] += 1
                staff = _staff(el.findtext("staff"))
                self.staff_keys.add(staff)
                _reach(highs, staff, pos + self._offset(el))
            elif tag == "sound" and "tempo" in el.attrib:
                at = pos + self._offset(el)
                if self._sound_tempo(el, base + at, 0, seq):
                    _reach(highs, 0, at)
                seq += 1
        self.seq = seq
        # a lone rest (or a measure="yes" one) fills the bar as music21 reads it
        bar = self.ts_len_after(meters)
        if (full_rest or (n_rests == 1 and n_notes == 0)) and rests and len(voices) <= 1:
            first = min(rests, key=lambda r: r.pos)
            kind = first.kind or (
                "whole" if first.dur == 4 * L else "breve" if first.dur == 8 * L else ""
            )
            if first.full or (
                first.dur != bar
                and kind in ("whole", "breve")
                and not first.dots
                and not first.tuplet
            ):
                first.dur = bar
        note_highs = dict(highs)
        for r in rests:
            _reach(highs, r.staff, r.pos + r.dur)
        self.ts_len = bar
        high = max(highs.values())
        if high == bar:
            shift = high
        elif high > bar:
            diff = high - bar
            round_ = (diff * 16) % L == 0 or (diff * 12) % L == 0  # a 1/16 or 1/12 multiple
            shift = high if 2 * diff > L or round_ else bar
        elif high == 0 and not any_note and not rests:
            shift = bar  # music21 fills an empty measure with a bar rest
            highs = {0: bar}
        else:
            shift = high
        self.last_highs = highs
        if forward_rest is not None and len(voices) <= 1:
            # music21 drops a Finale <forward> rest that ends the part: the last measure is shorter
            self.last_highs = note_highs
            for r in rests:
                if r is not forward_rest:
                    _reach(note_highs, r.staff, r.pos + r.dur)
        if shift > MAX_MEASURE_QUARTERS * L or high > MAX_MEASURE_QUARTERS * L:
            raise ScoreParseError(
                f"a measure lasts {high // L} quarter notes (over {MAX_MEASURE_QUARTERS})",
                "too_large",
            )
        self.measures.append(MeasureInfo(base, tuple(meters)))
        self.offset = base + shift

    def ts_len_after(self, meters: list[tuple[int, Meter]]) -> int:
        """The bar length (ticks) music21 compares a lone rest with: this measure's meter, or the last."""
        if meters:
            length = meters[0][1].length
            return length.numerator * self.L // length.denominator
        return self.ts_len

    def _offset(self, el: Element) -> int:
        text = el.findtext("offset")
        if not text or not text.strip():
            return 0
        return read_int(text, "offset") * self.unit

    def _direction(
        self, el: Element, onset: int, pos: int, highs: dict[int, int], seq: int
    ) -> None:
        at = pos + self._offset(el)
        staff = _staff(el.findtext("staff"))
        self.staff_keys.add(staff)
        metronome = False
        for kind in el.iterfind("direction-type/*"):
            tag = kind.tag
            if tag == "metronome":
                metronome = True
                bpm = metronome_bpm(kind)
                if bpm is not None and bpm > 0:
                    self.tempos.append((onset + at - pos, seq, staff, bpm))
                _reach(highs, staff, at)
            elif tag in _DIRECTION_MARKS or (tag == "dynamics" and len(kind)):
                _reach(highs, staff if tag not in ("segno", "coda") else 0, at)
        if not metronome:
            for sound in el.iterfind("sound"):
                if "tempo" in sound.attrib:
                    if self._sound_tempo(sound, onset + at - pos, staff, seq):
                        _reach(highs, staff, at)
                    break

    def _sound_tempo(self, sound: Element, onset: int, staff: int, seq: int) -> bool:
        try:
            bpm = float(sound.get("tempo", "0"))
        except ValueError:
            self.counts["unreadable_tempo_ignored"] += 1
            return False
        if bpm == 0:
            return False  # music21 skips a zero tempo
        if quarter_bpm(bpm, 1.0) > 0:
            self.tempos.append((onset, seq, staff, quarter_bpm(bpm, 1.0)))
        return True


class _Quirks:
    """One measure's state for reproducing the music21 misreadings in `PartReader.quirks`: a
    chord's first tie lent to its untied notes, a display accidental sounded, a <chord/> note
    not right after a <note> starting a new chord, a rest in a chord sounding C4."""

    def __init__(self, reader: PartReader) -> None:
        self.reader = reader
        self.events = reader.events
        self.lend = "chord-tie-lent" in reader.quirks
        self.accidental = "accidental-sounded" in reader.quirks
        self.detach = "detached-chord-note" in reader.quirks
        self.rest_c4 = "rest-in-chord-c4" in reader.quirks
        self.rest_head: _Rest | None = None  # a rest that may start a chord
        self.rest_voice = ""
        self.tie: str | None = None  # the chord's first tie, which music21 gives all its notes
        self.untied: list[int] = []  # events of this chord without a tie of their own

    def new_chord(self) -> None:
        self.tie = None
        self.untied.clear()

    def chord_note(self, tie: str | None, index: int) -> None:
        """Lend the chord's first tie to its untied notes (`index` -1: a dropped note)."""
        if not self.lend:
            return
        if tie is None:
            if index < 0:
                return
            if self.tie is None:
                self.untied.append(index)
            else:
                self.reader.lent[index] = self.tie
        elif self.tie is None:
            self.tie = tie
            for i in self.untied:
                self.reader.lent[i] = tie
            self.untied.clear()

    def rest_to_c4(self, seq: int, staff: int) -> int:
        """The rest that starts this chord sounds, as music21's default pitch C4."""
        rest, self.rest_head = self.rest_head, None
        assert rest is not None
        return self.c4(seq, self.reader.offset + rest.pos, rest.dur, staff, self.rest_voice)

    def c4(self, seq: int, onset: int, dur: int, staff: int, voice: str) -> int:
        """A rest of a chord sounds, as music21's default pitch C4; returns the last seq."""
        self.reader.counts["m21_quirk:rest-in-chord-c4"] += 1
        self.chord_note(None, len(self.events))
        seq += 1
        self.events.append(NoteEvent(onset, voice, seq, 60, dur, None, 80, staff))
        return seq


def _reach(highs: dict[int, int], staff: int, at: int) -> None:
    if at > highs.get(staff, -1):
        highs[staff] = at


def _staff(text: str | None) -> int:
    if not text:
        return 0
    try:
        return int(text.strip())
    except ValueError:
        return 0


def _number(el: Element, default: int) -> int:
    text = el.get("number")
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        return default


def _duration_text(el: Element) -> str:
    return (el.findtext("duration") or "").strip()
