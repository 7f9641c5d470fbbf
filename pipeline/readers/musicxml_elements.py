"""Readings of single MusicXML elements as music21 (the reference) reads them: pitch, meter, key,
metronome marks, note velocity, numbers.
"""

from __future__ import annotations

import math
from contextlib import suppress
from fractions import Fraction
from xml.etree.ElementTree import Element

from pipeline.errors import ScoreParseError, Unsupported
from pipeline.score import Meter

_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# quarter lengths of <beat-unit> types (metronome referents)
_TYPE_QL = {
    "maxima": Fraction(32), "long": Fraction(16), "longa": Fraction(16), "breve": Fraction(8),
    "whole": Fraction(4), "half": Fraction(2), "quarter": Fraction(1), "eighth": Fraction(1, 2),
    "16th": Fraction(1, 4), "32nd": Fraction(1, 8), "32th": Fraction(1, 8), "64th": Fraction(1, 16),
    "128th": Fraction(1, 32), "256th": Fraction(1, 64), "512th": Fraction(1, 128),
    "1024th": Fraction(1, 256),
}  # fmt: skip
_KEY_MODES = {"major": 0, "ionian": 0, "minor": 3, "aeolian": 3, "dorian": 2, "phrygian": 4}
_KEY_MODES.update({"lydian": -1, "mixolydian": 1, "locrian": 5})
ALTERING = {"sharp", "flat", "double-sharp", "sharp-sharp", "flat-flat", "double-flat"}
# semitones music21 gives an <accidental> name (MusicXML's, or music21's own); others: 0
_ACCIDENTAL_ALTER = {"sharp": 1.0, "flat": -1.0, "double-sharp": 2.0, "sharp-sharp": 2.0}
_ACCIDENTAL_ALTER.update({"flat-flat": -2.0, "double-flat": -2.0, "triple-sharp": 3.0})
_ACCIDENTAL_ALTER.update({"triple-flat": -3.0, "quadruple-sharp": 4.0, "quadruple-flat": -4.0})
_ACCIDENTAL_ALTER.update({"quarter-sharp": 0.5, "half-sharp": 0.5, "quarter-flat": -0.5})
_ACCIDENTAL_ALTER.update({"half-flat": -0.5, "three-quarters-sharp": 1.5})
_ACCIDENTAL_ALTER.update({"one-and-a-half-sharp": 1.5, "three-quarters-flat": -1.5})
_ACCIDENTAL_ALTER.update({"one-and-a-half-flat": -1.5})


def key_name(fifths: int, mode: str | None) -> str:
    """music21's key string: `"E- major"` for a known mode, `"ks:-3"` otherwise."""
    shift = _KEY_MODES.get(mode.lower()) if mode else None
    if shift is None or mode is None:
        return f"ks:{fifths:+d}"
    position = fifths + shift + 1  # on the line of fifths, F = 0
    accidentals = position // 7
    name = "FCGDAEB"[position % 7] + ("#" * accidentals if accidentals > 0 else "-" * -accidentals)
    return f"{name} {mode.lower()}"


def parse_meter(time: Element) -> Meter | None:
    """A <time> as music21 summarises it (`3+2`/8 -> 5/8, 3/8 + 2/4 -> 7/8); None if unreadable."""
    if time.find("senza-misura") is not None:
        raise Unsupported("musicxml:senza-misura")
    beats: list[str] = []
    types: list[str] = []
    for child in time:
        if child.tag == "beats":
            beats.append((child.text or "").strip())
        elif child.tag == "beat-type":
            types.append((child.text or "").strip())
        elif child.tag == "interchangeable":
            break
    try:
        pairs = [
            (sum(int(b) for b in num.split("+")), int(den))
            for num, den in zip(beats, types, strict=False)
        ]
    except ValueError:
        raise Unsupported("musicxml:time-signature", f"beats {beats} / {types}") from None
    if not pairs or any(num <= 0 or den <= 0 for num, den in pairs):
        raise Unsupported("musicxml:time-signature", f"beats {beats} / {types}")
    if len(pairs) == 1:
        return Meter(*pairs[0])
    den = max(d for _, d in pairs)
    total = sum(Fraction(n, d) for n, d in pairs) * den
    if total.denominator != 1 or any(den % d for _, d in pairs):
        raise Unsupported("musicxml:time-signature", f"composite {beats} / {types}")
    return Meter(int(total), den)


def read_int(text: str | None, what: str) -> int:
    try:
        return int(text or "")
    except ValueError:
        try:
            value = Fraction((text or "").strip())
        except ValueError:
            raise ScoreParseError(f"unreadable {what} {text!r}", "parse_error") from None
        if value.denominator != 1:
            raise Unsupported(f"musicxml:fractional-{what}", repr(text)) from None
        return int(value)


def midi_pitch(pitch: Element) -> int:
    """MIDI number of a <pitch>: written pitch, as music21 keeps it under <transpose>."""
    step, alter, octave = "C", 0.0, 4
    for child in pitch:
        tag = child.tag
        if tag == "step":
            step = (child.text or "C").strip()
        elif tag == "alter":
            text = (child.text or "").strip()
            if text:
                try:
                    alter = float(text)
                except ValueError:
                    alter = math.nan
                if not math.isfinite(alter) or abs(alter) > 12:
                    raise ScoreParseError(f"unreadable <alter> {text!r}", "parse_error")
        elif tag == "octave":
            octave = read_int(child.text, "octave")
    if step not in _STEPS:
        raise ScoreParseError(f"unknown <step> {step!r}", "parse_error")
    base = (octave + 1) * 12 + _STEPS[step]
    if alter == int(alter):
        return base + int(alter)
    return int(base + alter + 0.5) if base + alter >= 0 else -1  # music21 rounds half up


def accidental_pitch(pitch: int, pitch_el: Element, accidental: str) -> int:
    """music21's pitch where <pitch> has no <alter> value: it sounds the display <accidental>."""
    if (pitch_el.findtext("alter") or "").strip():
        return pitch
    alter = _ACCIDENTAL_ALTER.get(accidental.strip().lower(), 0.0)
    if alter == int(alter):
        return pitch + int(alter)
    return int(pitch + alter + 0.5)  # music21 rounds a quarter-tone half up


def note_velocity(dynamics: str) -> int:
    try:
        scalar = min(max(float(dynamics) * 90 / 12700, 0.0), 1.0)
    except ValueError:
        return 80
    if math.isnan(scalar):
        return 80
    velocity = round(scalar * 127)
    return min(127, max(1, velocity)) if velocity else 80


def read_key(el: Element) -> tuple[int, str | None]:
    fifths = el.findtext("fifths")
    if fifths is None:
        raise Unsupported("musicxml:non-traditional-key")
    mode = el.findtext("mode")
    return read_int(fifths, "fifths"), mode if mode and mode.lower() in _KEY_MODES else None


def metronome_bpm(metronome: Element) -> float | None:
    """Quarter-note BPM of a <metronome>, or None (metric modulation, no number)."""
    units: list[list[Fraction]] = []  # [quarter length, dots]
    number: float | None = None
    for child in metronome:
        tag = child.tag
        if tag == "beat-unit":
            ql = _TYPE_QL.get((child.text or "").strip())
            if ql is None:
                return None
            units.append([ql, Fraction(0)])
        elif tag == "beat-unit-dot" and units:
            units[-1][1] += 1
        elif tag == "per-minute" and number is None:
            with suppress(ValueError):  # text such as "c. 120" gives no number, as in music21
                number = float((child.text or "").strip())
    if len(units) > 1 or number is None:
        return None
    if not units:
        return quarter_bpm(number, 1.0)
    ql, dots = units[0]
    return quarter_bpm(number, float(ql * (2 - Fraction(1, 2 ** int(dots)))))


def quarter_bpm(number: float, referent: float) -> float:
    """music21's convertTempoByReferent to a quarter, float rounding and all (104 -> 104.00000000000001);
    0 for a number that gives no tempo (zero, negative, infinite)."""
    if not (math.isfinite(number) and number > 0 and referent > 0):
        return 0.0
    return float(60 / ((60 / number) / referent * 1.0))
