"""ABC tune lexer: the token stream music21's ABC reader builds, with pitches and lengths resolved.

The fast ABC reader must give what music21 gives, so this mirrors music21's tokenizer, quirks
included (inline fields `[K:...]` are empty chords, `Z` rests vanish, a note without a pitch
letter is a middle C), except where music21 misreads the source: accidentals last to the end of
the bar, chords included (music21: only under `%abc-2.x`, never into or out of a chord), `H`
fermata notes and `x` invisible rests keep their time (music21 drops them), a tie after a chord
ties its notes. With `quirks`, the lexer reproduces these misreadings for crosschecks and counts
each one that changed a pitch or dropped a note (`QUIRK_*` names). Lengths are exact quarter-note
Fractions.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

from pipeline.errors import ScoreParseError
from pipeline.readers.abc_fields import (
    PITCH_LETTER,
    KeySig,
    default_length,
    note_length,
    note_pitch,
    parse_key,
    parse_meter,
    split_field,
    tuplet_ratio,
)
from pipeline.score import Meter

# Token kinds.
META, BAR, NOTE, TUPLET, BROKEN, TIE, GRACE_START, GRACE_STOP, OTHER = range(9)

# music21's bar symbols in matching order: (symbol, is a "regular" bar for measure detection).
_BARS = (
    (":|1", False), (":|2", False), ("|]", False), ("||", False), ("[|", False), ("[1", True),
    ("[2", True), ("|1", True), ("|2", True), (":|", False), ("|:", False), ("::", False),
    ("|", True), (":", False),
)  # fmt: skip
_BAR_REGULAR = dict(_BARS)
# Two-token expansions music21 applies to some bar symbols.
_BAR_SPLIT = {
    "::": ((":|", False), ("|:", False)),
    "|1": (("|", True), ("[1", True)),
    "|2": (("|", True), ("[2", True)),
    ":|1": ((":|", False), ("[1", True)),
    ":|2": ((":|", False), ("[2", True)),
}
_DECORATIONS = ".~^=_HLMOPSTuv"
_ACCIDENTALS = "^=_"
_NOT_PITCH = "~wuvhHLTSN"
# Note-like strings music21 drops without a token.
_SKIPPED = frozenset((
    "w", "u", "v", "v.", "h", "H", "vk", "uk", "U", "~", ".", "=", "V", "S", "s", "i", "I", "ui",
    "u.", "Q", "Hy", "Hx", "r", "m", "M", "n", "N", "o", "O", "P", "l", "L", "R", "y", "T", "t",
    "x", "Z",
))  # fmt: skip
_SKIPPED_AFTER_SYMBOL = tuple("uvkKQ.yTwhx")
_SINGLE = {".": OTHER, "u": OTHER, "{": GRACE_START, "}": GRACE_STOP, "v": OTHER}
_DIRECTIVE = re.compile(r"^%%([a-z\-]+)\s+(\S+)(.*)")
_SYMBOL = re.compile('"[^"]*"')
_NOTE_HEAD = re.compile("([_^=]*)([A-Ga-g])([,']*)")
_HAIRPINS = frozenset(("!crescendo(!", "!crescendo)!", "!diminuendo(!", "!diminuendo)!"))
# Report counters of music21's misreadings, reproduced with `quirks` (see pipeline.crosscheck).
QUIRK_ACCIDENTAL = "m21_quirk:accidental-not-carried"
QUIRK_FERMATA = "m21_quirk:fermata-note-dropped"
QUIRK_INVISIBLE_REST = "m21_quirk:invisible-rest-dropped"
QUIRK_ANNOTATION = "m21_quirk:annotation-note-dropped"
QUIRK_CHORD_TIE = "m21_quirk:chord-tie-ignored"


@dataclass(slots=True)
class Token:
    """One lexical unit: a field, a bar line, a note/chord/rest, or a marker that affects them."""

    kind: int
    src: str
    regular: bool = False  # BAR: counts toward "the tune defines measures"
    symbols: list[str] = field(default_factory=list)  # NOTE: chord symbols / annotations
    pitches: list[int] = field(default_factory=list)  # NOTE: MIDI pitches (empty: rest)
    is_chord: bool = False
    empty: bool = False  # NOTE: a chord without notes (e.g. an inline field): adds nothing
    length: Fraction = Fraction(0)  # NOTE: quarter notes, tuplet applied
    tie: str | None = None
    grace: bool = False
    carried: str = ""
    m21_carried: str = ""  # with quirks: the accidental music21 carries to this note
    broken: tuple[str, str] | None = None
    ratio: tuple[int, int, int] | None = None  # TUPLET: actual, normal, note count
    carry_map: dict[str, str] | None = None  # chord: the bar's accidentals before it


class Lexer:
    """Tokenize one tune's text and resolve lengths, pitches, ties, tuplets and grace notes."""

    def __init__(
        self, text: str, version: tuple[int, int, int] = (1, 3, 0), *, quirks: bool = False
    ) -> None:
        self.text = text
        self.version = version
        # quirks: reproduce music21 where it misreads the source (drops `H` fermata notes and
        # `x` rests, carries accidentals only under `%abc-2.x`), counting each change it makes
        self.quirks = quirks
        self.quirk_counts: Counter[str] = Counter()
        self.directives: dict[str, str] = {}
        self.tokens: list[Token] = []

    # -- tokenizing ------------------------------------------------------------------------------
    def tokenize(self) -> list[Token]:
        """music21's tokenizer: fields, bars, tuplets, broken rhythm, chords, notes, markers."""
        s = self.text
        n = len(s)
        out = self.tokens
        symbol = ""  # chord symbols collected until the next note or chord
        carried: dict[str, str] = {}
        m21_carried: dict[str, str] = {}  # with quirks: the accidentals music21 carries
        accidental = ""
        pitch = ""  # music21 never resets this between notes; it only gates a branch below
        pos = 0
        while pos < n:
            c = s[pos]
            c1 = s[pos + 1] if pos + 1 < n else None
            c2 = s[pos + 2] if pos + 2 < n else None
            if c == "%":
                end = s.find("\n", pos + 1)
                end = n if end < 0 else end
                match = _DIRECTIVE.match(s[pos : end + 1])
                if match:
                    self.directives[match.group(1)] = match.group(2)
                pos = end
                continue
            if (
                c1 == ":"
                and c2 is not None
                and c2 != "|"
                and (c == "w" or (c.isalpha() and c.isupper()))
            ):
                end = s.find("\n", pos)
                end = n if end < 0 else end
                out.append(Token(META, s[pos:end].strip()))
                pos = end
                continue
            if not c.isspace() and not c.isalnum() and c not in "~(":
                bar = _match_bar(c, c1, c2)
                if bar is not None:
                    carried = {}
                    m21_carried = {}
                    accidental = ""
                    for src, regular in _BAR_SPLIT.get(bar, ((bar, _BAR_REGULAR[bar]),)):
                        out.append(Token(BAR, src, regular=regular))
                    pos += len(bar)
                    continue
            if c == "(" and c1 is not None and c1.isdigit():
                pos = self._tuplet(pos)
                continue
            if c in "<>":
                j = pos + 1
                while j < n - 1 and s[j] in "<>":
                    j += 1
                out.append(Token(BROKEN, s[pos:j].strip()))
                pos = max(j, pos + 1)
                continue
            if c == "!":
                end = s.find("!", pos + 1, min(pos + 20, n))
                if end >= 0 and s[pos : end + 1] in _HAIRPINS:
                    out.append(Token(OTHER, "!"))
                pos = end + 1 if end >= 0 else pos + 1
                continue
            if (c == "(" and c1 is not None) or c == ")":
                # slurs are ignored, but their tokens break broken-rhythm adjacency as in music21
                out.append(Token(OTHER, c))
                pos += 1
                continue
            if c == "-":
                out.append(Token(TIE, c))
                pos += 1
                continue
            if c == '"':
                j = pos + 1
                while j < n - 1 and s[j] != '"':
                    j += 1
                symbol += s[pos : j + 1]
                pos = j + 1
                continue
            if c == "[":
                j = s.find("]", pos + 1, n - 1)
                j = n if j < 0 else j + 1
                while j < n and (s[j].isdigit() or s[j] == "/"):
                    j += 1
                chord = Token(NOTE, symbol + s[pos:j], is_chord=True)
                chord.carry_map = self._carry_chord(s[pos + 1 : j], carried)
                out.append(chord)
                symbol = ""
                pos = j
                continue
            if c in "{}.uvKkM":
                out.append(Token(_SINGLE.get(c, OTHER), c))
                pos += 1
                continue
            if c.isalpha() or c in "~^=_":
                found = c.isalpha() and c not in _DECORATIONS
                if found:
                    pitch = c
                if c in _ACCIDENTALS:
                    accidental = c
                j = pos + 1
                while j < n:
                    d = s[j]
                    if not found and d in _DECORATIONS:
                        j += 1
                        if j >= n:
                            raise ScoreParseError("ABC text ends inside a note", "parse_error")
                        if s[j] in _ACCIDENTALS:
                            accidental += s[j]
                        continue
                    if not found and d.isalpha() and d not in _NOT_PITCH:
                        found = True
                        pitch = d
                        j += 1
                        continue
                    if d.isdigit() or d in ",/'":
                        if d in ",'":
                            pitch += d
                        j += 1
                        continue
                    break
                src = symbol + s[pos:j]
                symbol = ""
                pos = j
                body = src[src.rfind('"') + 1 :]
                if self.quirks and src[0] in "xH" and self._dropped_by_music21(src, body):
                    continue
                if body[:1] == "x" and all(ch.isdigit() or ch == "/" for ch in body[1:]):
                    # An invisible rest takes its time (music21 drops it and the bar shrinks).
                    src = src[: len(src) - len(body)] + "z" + body[1:]
                elif (
                    src in _SKIPPED
                    or (
                        src[0] == '"'
                        and (src.endswith(_SKIPPED_AFTER_SYMBOL) or src.endswith("v."))
                    )
                    or src[0] in "xZ"
                    or (len(src) > 1 and src[0] == "=" and src[1].isdigit())
                ):
                    continue
                elif src[0] == "H":
                    # A fermata: the note stays (music21 drops every `H`-prefixed note).
                    src = src[1:]
                    if not PITCH_LETTER.search(src):
                        continue
                token = Token(NOTE, src)
                self._carry(token, carried)
                if self.quirks and pitch:
                    # music21's own bookkeeping, keyed by its never-reset `pitch` string
                    mode = self._propagation()
                    step = pitch[0].upper()
                    if accidental:
                        if mode == "octave":
                            m21_carried[pitch] = accidental
                        elif mode == "pitch":
                            m21_carried[step] = accidental
                        accidental = ""
                    elif mode == "pitch":
                        token.m21_carried = m21_carried.get(step, "")
                    elif mode == "octave":
                        token.m21_carried = m21_carried.get(pitch, "")
                out.append(token)
                continue
            pos += 1
        return out

    def _dropped_by_music21(self, src: str, body: str) -> bool:
        """True: music21 drops this `x`- or `H`-prefixed note; counted where we would keep it."""
        if src[0] == "x":
            if all(ch.isdigit() or ch == "/" for ch in body[1:]):
                self.quirk_counts[QUIRK_INVISIBLE_REST] += 1
        elif src not in _SKIPPED and PITCH_LETTER.search(src[1:]):
            self.quirk_counts[QUIRK_FERMATA] += 1
        return True

    def _carry(self, token: Token, carried: dict[str, str]) -> None:
        """Bar-long accidentals (ABC 2.1, default `pitch`: the same letter in every octave).

        music21 carries them only when the text declares `%abc-2.x` in its first 100 characters,
        which no tune of the folk corpora does; without them, `^F ... F` in one bar reads F#, F.
        """
        mode = self.directives.get("propagate-accidentals", "pitch")
        match = _NOTE_HEAD.search(_split_symbols(token.src)[1])
        if match is None or mode == "not":
            return
        accidental, letter, octave = match.groups()
        key = letter.upper() if mode == "pitch" else letter + octave
        if accidental:
            carried[key] = accidental
        else:
            token.carried = carried.get(key, "")

    def _carry_chord(self, inner: str, carried: dict[str, str]) -> dict[str, str] | None:
        """The accidentals in force at a chord; its own accidentals then hold for the bar."""
        mode = self.directives.get("propagate-accidentals", "pitch")
        if mode == "not":
            return None
        before = dict(carried)
        for accidental, letter, octave in _NOTE_HEAD.findall(_SYMBOL.sub("", inner)):
            if accidental:
                carried[letter.upper() if mode == "pitch" else letter + octave] = accidental
        return before

    def _propagation(self) -> str:
        if self.version < (2, 0, 0):
            return "not"
        return self.directives.get("propagate-accidentals", "pitch")

    def _tuplet(self, pos: int) -> int:
        s = self.text
        n = len(s)
        j = pos + 2
        if j >= n:
            raise ScoreParseError("tuplet at the end of the ABC text", "parse_error")
        if s[j] == ":":
            q = s[j + 1] if j + 1 < n else None
            j += 1
            if q is not None and q.isdigit():
                j += 1
            if j >= n:
                raise ScoreParseError("tuplet at the end of the ABC text", "parse_error")
            if s[j] == ":":
                r = s[j + 1] if j + 1 < n else None
                j += 1
                if r is not None and r.isdigit():
                    j += 1
        self.tokens.append(Token(TUPLET, s[pos:j]))
        return j

    # -- context ----------------------------------------------------------------------------------
    def process(self) -> list[Token]:
        """music21's tokenProcess: give every note its length, pitch, tie, tuplet and grace flag."""
        tokens = self.tokens
        default: Fraction | None = None
        keysig: KeySig | None = None
        meter: Meter | None = None
        tuplet: Token | None = None
        remaining = 0
        tie_pending = False
        grace = False
        last_note: Token | None = None
        pending: list[tuple[Token, Fraction, KeySig | None, tuple[int, int, int] | None]] = []
        for i, token in enumerate(tokens):
            kind = token.kind
            if kind == META:
                tag, data = split_field(token.src)
                if tag == "M":
                    try:
                        meter = parse_meter(data)
                    except (ValueError, ZeroDivisionError) as exc:
                        raise ScoreParseError(f"bad meter {data!r}", "parse_error") from exc
                if tag == "L" or (tag == "M" and default is None):
                    default = default_length(tag, data, meter)
                elif tag == "K":
                    try:
                        keysig = parse_key(data)[0]
                    except (ValueError, KeyError) as exc:
                        raise ScoreParseError(f"bad key {data!r}", "parse_error") from exc
                continue
            if kind == BROKEN:
                prev = tokens[i - 1] if i > 0 else None
                nxt = tokens[i + 1] if i + 1 < len(tokens) else None
                if prev is not None and nxt is not None and prev.kind == NOTE and nxt.kind == NOTE:
                    prev.broken = (token.src, "left")
                    nxt.broken = (token.src, "right")
            elif kind == TUPLET:
                tuplet = token
                token.ratio = tuplet_ratio(token.src, meter)
                remaining = token.ratio[2]
            elif kind == TIE:
                if last_note is not None:
                    last_note.tie = "continue" if last_note.tie == "stop" else "start"
                tie_pending = True
            elif kind == GRACE_START:
                grace = True
            elif kind == GRACE_STOP:
                grace = False
            elif kind == NOTE:
                if default is None:
                    raise ScoreParseError("no default note length (L: or M:)", "parse_error")
                if tie_pending:
                    token.tie = "stop"
                    tie_pending = False
                token.grace = grace
                ratio = None
                if tuplet is not None:
                    if remaining == 0:
                        tuplet = None
                    else:
                        remaining -= 1
                        ratio = tuplet.ratio
                pending.append((token, default, keysig, ratio))
                last_note = token
        # Lengths are resolved last: a broken-rhythm marker also changes the note before it.
        for token, default, keysig, ratio in pending:
            self._resolve(token, default, keysig)
            if ratio is not None:
                token.length = token.length * ratio[1] / ratio[0]
        return tokens

    def _resolve(self, token: Token, default: Fraction, keysig: KeySig | None) -> None:
        """Pitch(es) and length of one note, rest or chord token."""
        token.symbols, src = _split_symbols(token.src)
        if not token.is_chord:
            midi = note_pitch(src, token.carried, keysig)
            if self.quirks and token.m21_carried != token.carried:
                misread = note_pitch(src, token.m21_carried, keysig)
                if misread != midi and not token.grace:  # a grace note is dropped anyway
                    self.quirk_counts[QUIRK_ACCIDENTAL] += 1
                midi = misread
            token.pitches = [] if midi is None else [midi]
            token.length = note_length(src, default, token.broken)
            return
        close = src.find("]")
        if close < 0:
            raise ScoreParseError(f"chord without a closing bracket: {src[:40]!r}", "parse_error")
        outer = note_length(src[close + 1 :], Fraction(1), token.broken)
        inner = Lexer(src[1:close], quirks=self.quirks)
        inner_length = Fraction(0)
        in_force = None if token.carry_map is None else dict(token.carry_map)
        by_pitch = self.directives.get("propagate-accidentals", "pitch") == "pitch"
        for sub in inner.tokenize():
            if sub.kind != NOTE:
                continue
            sub_src = _split_symbols(sub.src)[1]
            if sub.is_chord:
                # a '[' inside a chord: its own ']' ended the outer chord, so music21 fails
                raise ScoreParseError(f"bad chord {src[:40]!r}: no closing bracket", "parse_error")
            carried = ""
            head = _NOTE_HEAD.search(sub_src) if in_force is not None else None
            if in_force is not None and head is not None:
                accidental, letter, octave = head.groups()
                key = letter.upper() if by_pitch else letter + octave
                if accidental:
                    in_force[key] = accidental
                else:
                    carried = in_force.get(key, "")
            midi = note_pitch(sub_src, carried, keysig)
            if self.quirks and carried:
                # music21 carries no accidental into a chord
                misread = note_pitch(sub_src, "", keysig)
                if misread != midi:
                    self.quirk_counts[QUIRK_ACCIDENTAL] += 1
                    midi = misread
            if midi is None:
                continue
            if not inner_length:
                inner_length = note_length(sub_src, default, None)
            token.pitches.append(midi)
        # an `x` rest in a chord adds nothing either way; a dropped `H` note is one note fewer
        self.quirk_counts[QUIRK_FERMATA] += inner.quirk_counts[QUIRK_FERMATA]
        token.empty = not token.pitches
        token.length = outer * inner_length


def _split_symbols(src: str) -> tuple[list[str], str]:
    """(quoted strings, the rest after the last complete one), as music21 splits a note."""
    if '"' not in src:
        return [], src
    matches = list(_SYMBOL.finditer(src))
    if not matches:
        raise ScoreParseError(f"unclosed chord symbol in {src[:40]!r}", "parse_error")
    return [m.group(0) for m in matches], src[matches[-1].end() :]


def _match_bar(c: str, c1: str | None, c2: str | None) -> str | None:
    """The bar symbol at this position, matched longest first as music21 does."""
    if c1 is not None:
        if c2 is not None and c + c1 + c2 in _BAR_REGULAR:
            return c + c1 + c2
        if c + c1 in _BAR_REGULAR:
            return c + c1
    return c if c in "|:" else None
