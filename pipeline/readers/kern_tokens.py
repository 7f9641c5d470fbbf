"""Humdrum **kern lexing: pieces of a file, spine paths (split, join, exchange), token meanings.

The spine model follows music21's humdrum parser (the reference reader): a split spine (`*^`)
becomes two voices inside its parent, a join (`*v *v`) returns to the parent, `*x` swaps two
spines, `*-` ends one; spines are parts numbered from the right. Tokens are read the way
music21 reads them (the first run of `a-g` letters is the pitch, any `r` makes a rest, any `q`,
`Q` or `P` a grace note), so that both readers agree; where music21 loses data (an unparsable
chord member drops the whole chord, nested splits are never laid out) this module keeps it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NamedTuple, cast

from pipeline.errors import ScoreParseError, Unsupported
from pipeline.readers.conventions import tempo_word_bpm
from pipeline.score import Meter

# Object kinds of a spine (what music21 turns a token into; None tokens make no object).
NOTE, REST, BAR, METER, KEY, TEMPO, INSTRUMENT, OTHER, BAD = range(9)

PATH_TOKENS = frozenset({"*+", "*-", "*^", "*v", "*x", "*"})
_OPUS_END = re.compile(r"^(\*-\t)*\*-$")
_OPUS_START = re.compile(r"^(\*\*\w+\t)*\*\*\w+$")
_PITCH = re.compile(r"[a-gA-G]+")
_SHARPS = re.compile(r"#+")
_FLATS = re.compile(r"-+")
_RATIONAL = re.compile(r"(\d+)%(\d+)")
_NUMBER = re.compile(r"\d+")
_BAR_NUMBER = re.compile(r"\d+")
_METER = re.compile(r"(\d+)/(\d+)$")
_KEY = re.compile(r"([A-Ga-g])(#*|-*)$")
_STEPS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
# Signifiers of the **kern specification (pitch, duration, ties, slurs, beams, ornaments,
# articulations, stems, editorial marks); anything else on a note is counted, never fatal.
_KNOWN = frozenset(
    "0123456789.%abcdefgABCDEFG#-nr[]_(){}&LJKk/\\tTwWmMS$RO'\"`~^;vuqQPpxXyYiIjNoHhUszZ:<>?!|@+ "
)
# Humdrum instrument codes -> music21's instrument names (what the reference's part name is).
_INSTRUMENTS = {
    "soprn": "Soprano", "cant": "Soprano", "mezzo": "Mezzo-Soprano", "calto": "Alto",
    "tenor": "Tenor", "barit": "Baritone", "bass": "Bass", "vox": "Voice", "alto": "Alto",
    "arpa": "Harp", "banjo": "Banjo", "bguit": "Electric Bass", "cbass": "Contrabass",
    "cello": "Violoncello", "cemba": "Harpsichord", "clavi": "Clavichord", "dulc": "Dulcimer",
    "eguit": "Electric Guitar", "guitr": "Guitar", "liuto": "Lute", "koto": "Koto",
    "mando": "Mandolin", "piano": "Piano", "shami": "Shamisen", "sitar": "Sitar",
    "ukule": "Ukulele", "viola": "Viola", "violn": "Violin", "accor": "Accordion",
    "armon": "Harmonica", "bagpS": "Bagpipes", "bagpI": "Bagpipes", "cangl": "English Horn",
    "clarb": "Bass clarinet", "cor": "Horn", "fagot": "Bassoon", "flt": "Flute", "oboe": "Oboe",
    "organ": "Pipe Organ", "panpi": "Pan Flute", "picco": "Piccolo", "reedo": "Reed Organ",
    "saxS": "Soprano Saxophone", "saxA": "Alto Saxophone", "saxT": "Tenor Saxophone",
    "saxR": "Baritone Saxophone", "shaku": "Shakuhachi", "tromt": "Trombone",
    "tromb": "Bass Trombone", "tromp": "Trumpet", "tuba": "Tuba", "bdrum": "Bass Drum",
    "campn": "Church Bells", "caril": "Church Bells", "casts": "Castanets",
    "chime": "Tubular Bells", "crshc": "Crash Cymbals", "glock": "Glockenspiel", "gong": "Gong",
    "marac": "Maracas", "marim": "Marimba", "piatt": "Cymbals", "ridec": "Ride Cymbals",
    "sdrum": "Snare Drum", "spshc": "Splash Cymbals", "steel": "Steel Drum",
    "tambn": "Tambourine", "timpa": "Timpani", "tom": "Tom-Tom", "trngl": "Triangle",
    "vibra": "Vibraphone", "xylo": "Xylophone", "clest": "Celesta", "hammd": "Electric Organ",
}  # fmt: skip
_INSTRUMENT_CLASSES = {
    "vox": "Voice", "str": "StringInstrument", "ww": "Woodwind", "bras": "Brass",
    "klav": "Keyboard", "perc": "Percussion",
}  # fmt: skip
_MAX_DURATION_NUMBER = 4095  # music21 has no note type beyond 2048ths (tuplets up to 4095)
_CACHE_LIMIT = 50_000
_MAX_DOTS = 16


Component = tuple[int, str | None]  # (MIDI pitch, tie: "start" | "stop" | "continue" | None)
NotePayload = tuple[tuple[Component, ...], bool, int, int]


class Obj(NamedTuple):
    """One object of a spine: kind, source line (1-based), duration in quarters, payload.

    NOTE payload: (components ((midi, tie) ...), grace, dropped members, unknown signifiers);
    BAR: (measure number, start repeat); METER: Meter; KEY: key string; TEMPO: bpm; INSTRUMENT: name.
    """

    kind: int
    line: int
    dur: Fraction
    value: object = None


@dataclass(eq=False)
class Spine:
    """A spine after spine paths: its tokens, and the voices it splits into at which lines."""

    sid: int
    tokens: list[tuple[int, str]] = field(default_factory=list)
    parent: Spine | None = None
    first_voice: bool = False
    children_at: dict[int, tuple[Spine, Spine]] = field(default_factory=dict)

    def spine_type(self) -> str:
        """The exclusive interpretation (`kern`, `dynam`...), inherited from the parent."""
        spine: Spine | None = self
        while spine is not None:
            for _, token in spine.tokens:
                if token.startswith("**"):
                    return token[2:]
            spine = spine.parent
        raise ScoreParseError(f"spine {self.sid} has no exclusive interpretation", "parse_error")


# music21 misreadings a quirks reading reproduces (report counter `m21_quirk:<name>`).
QUIRKS = {
    "nested-split-lost": "voices of a split inside a split are never laid out",
    "chord-tie-lent": "a tie on one chord member is given to every member",
    "join-pairwise": "a join of 3+ voices closing nested voices is taken pairwise",
    "split-after-join-late": "a split straight after a join lands its voices one object late",
    "pitchless-chord-dropped": "a chord with a member without a pitch is dropped whole",
}


@dataclass
class Quirks:
    """Which music21 misreadings to reproduce, and which of them came into play in a read."""

    on: frozenset[str] = frozenset()
    hit: set[str] = field(default_factory=set)


@dataclass
class Piece:
    """One piece of a file: its spines (in creation order) and its `!!!` reference records."""

    spines: list[Spine]
    references: list[tuple[str, str]]


def split_pieces(lines: list[str]) -> list[list[str]]:
    """The pieces of a file as music21 splits them (a new `**` line after `*-` starts a piece)."""
    starts, ends = [], []
    for i, line in enumerate(lines):
        line = line.rstrip()
        if _OPUS_END.match(line):
            ends.append(i)
        elif _OPUS_START.match(line):
            starts.append(i)
    if len(starts) < 2:
        return [lines]
    if not ends:
        raise ScoreParseError("several `**` lines but no `*-` line", "parse_error")
    if ends[-1] <= starts[-1]:
        ends.append(len(lines))
    pieces = []
    for i, end in enumerate(ends):
        start = 0 if i == 0 else ends[i - 1] + 1
        pieces.append(lines[start:] if i == len(ends) - 1 and i > 0 else lines[start : end + 1])
    if len(pieces) < 2:
        raise ScoreParseError("malformed multi-piece humdrum data", "parse_error")
    return pieces


def read_piece(lines: list[str], quirks: Quirks | None = None) -> Piece:
    """Follow the spine paths of one piece, giving every token to the spine it belongs to."""
    quirks = quirks or Quirks()
    references: list[tuple[str, str]] = []
    spines: list[Spine] = []
    current: list[Spine | None] = []

    def new_spine() -> Spine:
        spine = Spine(len(spines))
        spines.append(spine)
        return spine

    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip()
        if not line:
            continue
        if line.startswith("!!"):
            if line.startswith("!!!"):
                references.append(_reference(line))
            continue
        tokens = line.split("\t")
        if "" in tokens:  # music21 splits on runs of tabs (a leading tab still makes a token)
            tokens = tokens[:1] + [t for t in tokens[1:] if t]
        path = False
        for j, token in enumerate(tokens):
            while len(current) <= j:
                current.append(None)
            spine = current[j]
            if spine is None:
                spine = current[j] = new_spine()
            spine.tokens.append((number, token))
            path = path or token in PATH_TOKENS
        if path:
            current = _follow_paths(tokens, current, new_spine, number, quirks)
    return Piece(spines, references)


def _follow_paths(
    tokens: list[str],
    current: list[Spine | None],
    new_spine: Callable[[], Spine],
    number: int,
    quirks: Quirks,
) -> list[Spine | None]:
    """The spines left to right after a spine-path line (music21's createHumdrumSpines).

    One difference: a run of joins that closes a whole split, voices of nested splits included
    (`*v *v *v` over three voices), returns to the spine that split; music21 joins pairwise
    and can hand the rest of a part to an inner voice or to the wrong column.
    """
    out: list[Spine | None] = []
    merging: Spine | bool = False
    exchanging: Spine | None = None
    width = max(len(tokens), len(current))
    skip_to = 0
    for j in range(width):
        if j < skip_to:
            continue
        spine = current[j] if j < len(current) else None
        token = tokens[j] if j < len(tokens) else None
        if token is None:
            if spine is not None:
                out.append(spine)
            continue
        if spine is None:
            raise ScoreParseError(
                f"line {number}: a spine-path token without a spine", "parse_error"
            )
        if token == "*v" and merging is False:
            run = j
            while run < width and run < len(tokens) and tokens[run] == "*v":
                run += 1
            joined = _whole_join(current[j:run], current) if run - j > 2 else None
            if joined is not None and "join-pairwise" in quirks.on:
                quirks.hit.add("join-pairwise")
                joined = None
            if joined is not None:
                out.append(joined)
                skip_to = run
                continue
        if token == "*-":
            continue
        if token == "*^":
            first, second = new_spine(), new_spine()
            first.parent = second.parent = spine
            first.first_voice = True
            spine.children_at[number] = (first, second)
            out.extend((first, second))
        elif token == "*v":
            if merging is False:
                merging = spine.parent if spine.parent is not None else True
            else:
                if spine.parent is not None:
                    out.append(spine.parent)
                elif merging is not True:
                    out.append(merging)
                else:
                    raise Unsupported("kern:join-of-top-level-spines", f"line {number}")
                merging = False
        elif token == "*x":
            if exchanging is None:
                exchanging = spine
            else:
                out.extend((spine, exchanging))
                exchanging = None
        else:
            out.append(spine)
    if exchanging is not None:
        raise ScoreParseError(f"unpaired spine exchange `*x` at line {number}", "parse_error")
    return out


def _whole_join(run: list[Spine | None], current: list[Spine | None]) -> Spine | None:
    """The spine a run of joins returns to when it closes every voice of one split, else None."""
    if any(spine is None or spine.parent is None for spine in run):
        return None
    common = set(_ancestors(run[0]))  # type: ignore[arg-type]
    for spine in run[1:]:
        common &= set(_ancestors(spine))  # type: ignore[arg-type]
    if not common:
        return None
    top = max(common, key=lambda s: len(_ancestors(s)))  # the deepest common ancestor
    under = [s for s in current if s is not None and top in _ancestors(s)]
    return (
        top
        if len(under) == len(run) and all(a is b for a, b in zip(under, run, strict=True))
        else None
    )


def _ancestors(spine: Spine) -> list[Spine]:
    found = []
    parent = spine.parent
    while parent is not None:
        found.append(parent)
        parent = parent.parent
    return found


def _reference(line: str) -> tuple[str, str]:
    """(code, value) of a `!!!` reference record (`OTL@@LAT` -> `OTL`)."""
    body = line.lstrip("!")
    code, sep, value = body.partition(":")
    if not sep:
        return ("", body.strip())  # not a reference record: music21 fails the file, we skip it
    code = code.strip().replace("@@", "@").split("@")[0]
    return (code, value.strip())


_CACHE: dict[str, tuple[int, Fraction, object]] = {}


def kern_meaning(token: str) -> tuple[int, Fraction, object]:
    """(kind, duration, payload) of a **kern token; kind is negative when it makes no object."""
    hit = _CACHE.get(token)
    if hit is None:
        if len(_CACHE) > _CACHE_LIMIT:  # bound memory on hostile input
            _CACHE.clear()
        hit = _CACHE[token] = _interpret(token)
    return hit


def kern_object(token: str, line: int) -> Obj | None:
    """The object a **kern token makes (None for null tokens and spine-path indicators)."""
    kind, dur, value = kern_meaning(token)
    return None if kind < 0 else Obj(kind, line, dur, value)


def _interpret(token: str) -> tuple[int, Fraction, object]:
    zero = Fraction(0)
    if token == ".":
        return (-1, zero, None)
    if token.startswith("*"):
        return _tandem(token)
    if token.startswith("="):
        match = _BAR_NUMBER.search(token)
        # A start repeat puts a left barline into the new measure: music21 keeps it even empty.
        start_repeat = token.count(":") > 1 or re.search(r"[|!=]:", token) is not None
        numbered = match is not None and match.group().strip("0") != ""  # only 0 or not matters
        return (BAR, zero, (1 if numbered else 0, start_repeat))
    if token.startswith("!"):
        return (OTHER, zero, None) if re.sub(r"^!+\s?", "", token) else (-1, zero, None)
    if " " in token:
        return _chord(token.split())
    note = _note(token)
    if note is None:
        return (BAD, zero, token)
    return note


def _tandem(token: str) -> tuple[int, Fraction, object]:
    zero = Fraction(0)
    if token in PATH_TOKENS:
        return (-1, zero, None)
    if token.startswith("*MM"):
        bpm = _tempo(token[3:])
        return (TEMPO, zero, bpm) if bpm else (OTHER, zero, None)
    if token.startswith("*M") and not token.startswith("*MM"):
        match = _METER.match(token[2:])
        if not match:
            return (-1, zero, None)  # music21 refuses the meter and drops the event
        if len(match.group(1)) > 4 or len(match.group(2)) > 4:
            raise Unsupported("kern:meter", token)
        num, den = int(match.group(1)), match.group(2)
        if den in ("0", "00", "000"):  # breve-based meters: 3/0 is 6/1
            num *= {"0": 2, "00": 4, "000": 8}[den]
            den = "1"
        if num <= 0 or int(den) <= 0:
            return (-1, zero, None)
        return (METER, zero, Meter(num, int(den)))
    if token.startswith("*IC"):
        name = _INSTRUMENT_CLASSES.get(token[3:])
        return (INSTRUMENT, zero, name) if name else (OTHER, zero, None)
    if token.startswith("*I") and not token.startswith(("*IG", "*ITr")):
        name = _INSTRUMENTS.get(token[2:])
        return (INSTRUMENT, zero, name) if name else (OTHER, zero, None)
    if token.startswith("*k"):
        sharps = token.count("#") or -token.count("-")
        return (KEY, zero, f"ks:{sharps:+d}") if abs(sharps) <= 12 else (OTHER, zero, None)
    if token.endswith(":") and not token.startswith("**"):
        match = _KEY.match(token[1:-1])
        if not match:
            return (-1, zero, None)  # music21 cannot make a key of it and drops the event
        tonic = match.group(1)
        mode = "minor" if tonic.islower() else "major"
        return (KEY, zero, f"{tonic.upper()}{match.group(2)} {mode}")
    return (OTHER, zero, None)


def _tempo(text: str) -> float | None:
    """Quarter-note BPM of a `*MM` mark, a number or a tempo word (music21's defaults)."""
    try:
        bpm = float(text)
    except ValueError:
        text = re.sub(r"\]\s*$", "", re.sub(r"^\[", "", text))
        found = tempo_word_bpm(text)
        return float(found) if found else None
    return bpm if bpm > 0 and bpm != float("inf") else None


def _chord(members: list[str]) -> tuple[int, Fraction, object]:
    """A chord: the first pitched member's duration; members without a pitch are counted."""
    components: list[Component] = []
    dur: Fraction | None = None
    grace = False
    dropped = unknown = 0
    for member in members:
        note = _note(member)
        if note is None:
            dropped += 1
            continue
        if note[0] != NOTE:
            continue  # a rest inside a chord: music21 leaves it out too
        comps, member_grace, _, member_unknown = cast(NotePayload, note[2])
        if dur is None:
            dur, grace = note[1], member_grace
        components.extend(comps)
        unknown += member_unknown
    if dur is None:
        return (BAD, Fraction(0), " ".join(members))
    return (NOTE, dur, (tuple(components), grace, dropped, unknown))


def _note(token: str) -> tuple[int, Fraction, object] | None:
    """A note or rest token as music21 reads it; None when it has neither pitch nor `r`."""
    unknown = sum(1 for c in token if c not in _KNOWN)
    grace = "q" in token or "Q" in token or "P" in token
    dur = Fraction(0) if grace else _duration(token)
    if "r" in token:
        return (REST, dur, None)
    match = _PITCH.search(token)
    if match is None:
        return None
    letters = match.group()
    step = letters[0].lower()
    octave = 3 + len(letters) if step == letters[0] else 4 - len(letters)
    alter = 0
    sharps = _SHARPS.search(token)
    if sharps:
        alter = len(sharps.group())
    else:
        flats = _FLATS.search(token)
        if flats:
            alter = -len(flats.group())
    midi = _midi(12 * (octave + 1) + _STEPS[step] + alter)
    tie = (
        "start"
        if "[" in token
        else "stop"
        if "]" in token
        else "continue"
        if "_" in token
        else None
    )
    return (NOTE, dur, (((midi, tie),), grace, 0, unknown))


def _midi(ps: int) -> int:
    """music21's `Pitch.midi`: values beyond 0-127 are folded back by octaves."""
    if ps > 127:
        value = 108 + ps % 12
        return value + 12 if value < 115 else value
    return ps % 12 if ps < 0 else ps


def _duration(token: str) -> Fraction:
    """Quarter length of a **kern duration: reciprocal (with tuplets), `%` rational, dots."""
    dots = token.count(".")
    if dots > _MAX_DOTS:
        raise Unsupported("kern:duration", f"{dots} dots in {token[:40]!r}")
    factor = 2 - Fraction(1, 2**dots) if dots else Fraction(1)
    rational = _RATIONAL.search(token)
    if rational:
        if len(rational.group(1)) > 6 or len(rational.group(2)) > 6:
            raise Unsupported("kern:duration", token[:40])
        first, second = int(rational.group(1)), int(rational.group(2))
        if first == 0:
            return Fraction(0)
        return Fraction(4 * second, first) * factor
    number = _NUMBER.search(token)
    if number is None:
        return Fraction(1)  # music21's default: a quarter note
    text = number.group()
    if len(text) > 6:
        raise Unsupported("kern:duration", token[:40])
    value = int(text)
    if value == 0:
        return {"00": Fraction(16), "000": Fraction(32)}.get(text, Fraction(8)) * factor
    if value > _MAX_DURATION_NUMBER:
        raise Unsupported("kern:duration", f"reciprocal duration {value}")
    return Fraction(4, value) * factor
