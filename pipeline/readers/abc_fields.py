"""ABC values as music21 reads them: fields (meter, key, tempo, unit length, version), note
pitches and lengths, tuplet ratios. No tokenizing here: the lexer calls these rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from pipeline.errors import ScoreParseError
from pipeline.readers.conventions import tempo_word_bpm
from pipeline.score import Meter

PITCH_LETTER = re.compile("[a-gA-Gz]")
_STEP_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_TUPLET_DIGITS = frozenset("123456789")
_TUPLET_NORMAL = {"1": 1, "2": 3, "3": 2, "4": 3, "6": 2, "8": 3}
_BROKEN = {
    ">": (Fraction(3, 2), Fraction(1, 2)), "<": (Fraction(1, 2), Fraction(3, 2)),
    ">>": (Fraction(7, 4), Fraction(1, 4)), "<<": (Fraction(1, 4), Fraction(7, 4)),
    ">>>": (Fraction(15, 8), Fraction(1, 8)), "<<<": (Fraction(1, 8), Fraction(15, 8)),
}  # fmt: skip
_VERSION = re.compile(r"%abc-(\d+)\.(\d+)\.?(\d+)?")
_SHARP_ORDER = "FCGDAEB"
_FIFTHS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F": -1}
MODE_SHIFT = {
    "major": 0, "minor": -3, "dorian": -2, "phrygian": -4, "lydian": 1, "mixolydian": -1,
    "ionian": 0, "aeolian": -3, "locrian": -5,
}  # fmt: skip
_MODES = (
    ("dor", "dorian"), ("phr", "phrygian"), ("lyd", "lydian"), ("mix", "mixolydian"),
    ("maj", "major"), ("ion", "ionian"), ("aeo", "aeolian"), ("m", "minor"),
)  # fmt: skip
# Key names music21 recognises, longest first (`hp`: highland pipes).
_KEY_NAMES = sorted(
    ("c", "g", "d", "a", "e", "b", "f#", "g#", "a#", "f", "bb", "eb", "d#", "ab", "e#", "db", "c#",
     "gb", "cb", "hp"), key=len, reverse=True,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class KeySig:
    """A key signature: sharps (negative: flats) and the mode, or None for a bare signature."""

    sharps: int
    mode: str | None

    def altered(self) -> dict[str, int]:
        """Step letter -> alteration in semitones implied by the signature."""
        return altered(self.sharps)

    def name(self) -> str:
        """The reference's key string: `"G major"`, `"B- minor"`, or `"ks:+2"` without a mode."""
        if self.mode is None:
            return f"ks:{self.sharps:+d}"
        fifths = self.sharps - MODE_SHIFT[self.mode]
        # Tonic spelled from its position on the line of fifths (F = -1 ... B = 5).
        letter = "FCGDAEB"[(fifths + 1) % 7]
        accidental = (fifths + 1) // 7
        return f"{letter}{'#' * accidental if accidental > 0 else '-' * -accidental} {self.mode}"


@lru_cache(maxsize=64)
def altered(sharps: int) -> dict[str, int]:
    """Step letter -> alteration (semitones) of the signature with `sharps` (negative: flats)."""
    out: dict[str, int] = {}
    order = _SHARP_ORDER if sharps > 0 else _SHARP_ORDER[::-1]
    for i in range(abs(sharps)):
        step = order[i % 7]
        out[step] = out.get(step, 0) + (1 if sharps > 0 else -1)
    return out


def parse_meter(data: str) -> Meter | None:
    """An `M:` value as music21 reads it (`C`, `C|`, `none`, `n/d`); raises ValueError if bad."""
    if data.lower() == "none":
        return None
    if data == "C":
        return Meter(4, 4)
    if data == "C|":
        return Meter(2, 2)
    num, den = data.split("/")
    return Meter(
        int("".join(c for c in num if c.isdigit())), int("".join(c for c in den if c.isdigit()))
    )


def parse_key(data: str) -> tuple[KeySig, int]:
    """A `K:` value as music21 reads it: the signature and the clef transposition (semitones)."""
    tonic, rest = "C", ""
    lowered = data.lower()
    for name in _KEY_NAMES:
        if lowered.startswith(name):
            tonic, rest = data[: len(name)], data[len(name) :]
            break
    rest = rest.strip()
    mode: str | None = "major" if not rest else None
    if rest:
        low = rest.lower()
        mode = next((full for prefix, full in _MODES if low.startswith(prefix)), None)
    if tonic in ("HP", "Hp"):
        sharps, mode = (0 if tonic == "HP" else 2), None
    else:
        if tonic.lower() == "hp":  # hP / hp: music21 cannot name it and fails
            raise ValueError(f"bad key {data!r}")
        letter = tonic[0].upper()
        alter = 0 if len(tonic) == 1 else (1 if tonic[1] == "#" else -1)
        sharps = _FIFTHS[letter] + 7 * alter + MODE_SHIFT[mode or "major"]
    transpose = -12 if "-8va" in lowered else (-24 if "bass" in lowered else 0)
    return KeySig(sharps, mode), transpose


def abc_version(text: str) -> tuple[int, int, int]:
    """The `%abc-x.y` version declared in the first 100 characters (music21 default 1.3.0)."""
    match = _VERSION.search(text[:100])
    if not match:
        return (1, 3, 0)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def split_field(src: str) -> tuple[str, str]:
    """(tag, data) of a field token, the comment removed as music21 does."""
    colon = src.find(":")
    body = src.split("%")[0]
    return src[:colon], body[colon + 1 :].strip()


def tempo_bpm(data: str) -> float | None:
    """Quarter-note BPM of a `Q:` field as music21 reads it (None: no usable number)."""
    text = ""
    if '"' in data:
        inside: list[str] = []
        outside: list[str] = []
        is_open = False
        for char in data:
            if char == '"':
                is_open = not is_open
                continue
            (inside if is_open else outside).append(char)
        text = "".join(inside).strip()
        rest = "".join(outside).strip()
    else:
        rest = data.strip()
    number: float | None = None
    referent = 1.0
    try:
        if rest:
            if "=" in rest:
                beats, value = rest.split("=")
                number = float(value)
                referent = 0.0
                for beat in beats.split(" "):
                    num, den = beat.split("/") if "/" in beat else ("1", "1")
                    referent += float(num) / float(den) * 4
            else:
                number = float(rest)
    except (ValueError, ZeroDivisionError) as exc:
        raise ScoreParseError(f"bad tempo Q:{data}", "parse_error") from exc
    if number is None and text:
        found = tempo_word_bpm(text)
        number = float(found) if found is not None else None
    if not number or referent <= 0:
        return None
    bpm = number * referent
    return float(bpm) if bpm > 0 else None


def default_length(tag: str, data: str, meter: Meter | None) -> Fraction:
    """The unit note length an `L:` field sets, or an `M:` field implies (music21's rule)."""
    if tag == "L":
        if "/" not in data:
            raise ScoreParseError(f"bad default length L:{data}", "parse_error")
        num, den = data.split("/", 1)
        try:
            return Fraction(4 * int(num.strip()), 4 if den == "G" else int(den.strip()))
        except (ValueError, ZeroDivisionError) as exc:
            raise ScoreParseError(f"bad default length L:{data}", "parse_error") from exc
    if meter is None:
        return Fraction(1, 2)
    return (
        Fraction(1, 4)
        if Fraction(meter.numerator, meter.denominator) < Fraction(3, 4)
        else Fraction(1, 2)
    )


def tuplet_ratio(src: str, meter: Meter | None) -> tuple[int, int, int]:
    """(actual, normal, note count) of a `(p:q:r` tuplet under `meter`, as music21 reads it."""
    parts = src.strip().split(":")
    digit = parts[0][1:]
    if digit not in _TUPLET_DIGITS:
        raise ScoreParseError(f"cannot handle tuplet {src!r}", "parse_error")
    compound = meter is not None and meter.numerator % 3 == 0 and meter.numerator > 3
    actual = int(digit)
    normal = _TUPLET_NORMAL.get(digit, 3 if compound else 2)
    try:
        if len(parts) >= 2 and parts[1]:
            normal = int(parts[1])
        count = int(parts[2]) if len(parts) >= 3 and parts[2] else actual
    except ValueError as exc:
        raise ScoreParseError(f"cannot handle tuplet {src!r}", "parse_error") from exc
    return actual, normal, count


def note_pitch(src: str, carried: str, keysig: KeySig | None) -> int | None:
    """MIDI pitch of a note's source (after its chord symbols), None for a rest."""
    return _pitch_of(src, carried, None if keysig is None else keysig.sharps)


@lru_cache(maxsize=8192)
def _pitch_of(src: str, carried: str, sharps: int | None) -> int | None:
    if len(src) > 1 and src[0] in "uT":
        src = src[1:]
    src = src.replace("T", "")
    match = PITCH_LETTER.search(src)
    if match is None:
        return 60  # music21 warns and reads a middle C when a note holds no pitch letter (`y2`)
    name = match.group(0)
    if name == "z":
        return None
    octave = (5 if name.islower() else 4) - src.count(",") + src.count("'")
    step = name.upper()
    if carried:
        alter = carried.count("^") - carried.count("_")
    elif "_" in src or "^" in src or "=" in src:
        alter = src.count("^") - src.count("_")
    elif sharps is not None:
        alter = altered(sharps).get(step, 0)
    else:
        alter = 0
    return (octave + 1) * 12 + _STEP_PC[step] + alter


def note_length(src: str, default: Fraction, broken: tuple[str, str] | None) -> Fraction:
    """music21's length rule: every digit and slash of the source read as one modifier."""
    # cached on plain ints: hashing and comparing Fractions would cost more than the rule
    return _length_of(src, default.numerator, default.denominator, broken)


@lru_cache(maxsize=8192)
def _length_of(src: str, num_: int, den_: int, broken: tuple[str, str] | None) -> Fraction:
    default = Fraction(num_, den_)
    num = "".join(c for c in src if c.isdigit() or c == "/")
    try:
        if num == "":
            length = default
        elif num == "/":
            length = default / 2
        elif num == "//":
            length = default / 4
        elif num == "///":
            length = default / 8
        elif num.startswith("/"):
            length = default / int(num.split("/")[1])
        elif num.endswith("/"):
            length = default * int(num.split("/", 1)[0]) / 2
        elif num.count("/") == 2:
            length = Fraction(1)
        elif "/" in num:
            a, b = num.split("/")
            length = default * int(a) / int(b)
        else:
            length = default * int(num)
    except (ValueError, ZeroDivisionError) as exc:
        raise ScoreParseError(f"bad note length {src!r}", "parse_error") from exc
    if broken is not None:
        pair = _BROKEN.get(broken[0], (Fraction(1), Fraction(1)))
        length *= pair[0] if broken[1] == "left" else pair[1]
    return length
