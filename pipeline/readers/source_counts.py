"""A parser-independent count of the measures and notes a source file holds, as written.

The verify stage compares a reader's score with these counts to catch a piece read short (music21
silently drops measures of some kern files). Counting is a line/regex scan, never a tree build, so
it costs a small fraction of a parse and stays bounded on hostile input.

Conventions, shared by every format: repeats are not expanded; grace notes, rests and unpitched
notes are not notes; a chord counts each of its note heads; a tied continuation is not counted
again (the canonical score merges it into the note it continues). MIDI writes no measures: its
count is the pitched note-ons (`midi_scan.count_note_ons`; channel 10 is unpitched). Every pattern is linear in its
input (no nested unbounded repeats, lazy scans bounded), so hostile text costs its length.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from pipeline.errors import ScoreParseError
from pipeline.readers.common import X_LINE, read_capped
from pipeline.readers.midi_scan import count_note_ons

# Larger files (or .mxl members) are not counted (`{}`): far beyond any real score.
MAX_BYTES = 64 << 20


@dataclass(frozen=True)
class SourceCount:
    """What a source piece holds as written: measures with music, and pitched note heads."""

    measures: int
    notes: int


def count_source(path: Path) -> dict[str | None, SourceCount]:
    """Counts per collection item (`None` for a single piece, the `X:` number for ABC tunes).

    `{}` for unknown suffixes and what cannot be counted (a broken zip or MIDI file, an
    oversized member); MIDI counts notes only (measures 0). Raises only ScoreParseError (a file
    that cannot be read).
    """
    suffix = path.suffix.lower()
    if suffix in (".mid", ".midi"):
        return _midi_counts(path)
    if suffix == ".mxl":
        data = _mxl_document(path)
        return {} if data is None else _musicxml_counts(data)
    if suffix not in (".xml", ".musicxml", ".krn", ".abc"):
        return {}
    data = _read_capped(path)
    if data is None:
        return {}
    if suffix == ".krn":
        return _kern_counts(data.decode("latin-1"))
    if suffix == ".abc":
        return _abc_counts(data.decode("utf-8", errors="replace"))
    return _musicxml_counts(data)


def _midi_counts(path: Path) -> dict[str | None, SourceCount]:
    midi = _read_capped(path)
    if midi is None:
        return {}
    try:
        return {None: SourceCount(0, count_note_ons(midi, path))}
    except ScoreParseError:  # framing failed: the readers refuse the file (bad_midi)
        return {}


def _read_capped(path: Path) -> bytes | None:
    """The file's bytes, or None when it is larger than MAX_BYTES (judged from its size first,
    so a sparse file is not read)."""
    try:
        return read_capped(path, MAX_BYTES, "source")
    except OSError as exc:
        raise ScoreParseError(f"{path}: cannot be read ({exc})", "unreadable") from exc
    except ScoreParseError:  # too_large: not counted
        return None


# --- MusicXML -------------------------------------------------------------------------------

_ROOTFILE = re.compile(rb"<rootfile\b[^>]{0,2000}?full-path\s*=\s*[\"']([^\"']+)[\"']")


def _mxl_document(path: Path) -> bytes | None:
    """The MusicXML document of a compressed file (the container's rootfile), size-capped."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            name = None
            if "META-INF/container.xml" in names:
                with archive.open("META-INF/container.xml") as member:
                    match = _ROOTFILE.search(member.read(1 << 20))
                if match is not None:
                    name = match.group(1).decode("utf-8", errors="replace")
            if name not in names:
                name = next(
                    (
                        n
                        for n in names
                        if n.lower().endswith((".xml", ".musicxml"))
                        and not n.startswith("META-INF/")
                    ),
                    None,
                )
            if name is None:
                return None
            if archive.getinfo(name).file_size > MAX_BYTES:
                return None
            # Read at most one byte past the cap: a declared size can lie (zip bombs).
            with archive.open(name) as member:
                data = member.read(MAX_BYTES + 1)
    except Exception:  # BadZipFile, OSError, zlib.error, NotImplementedError...: not countable
        return None
    return None if len(data) > MAX_BYTES else data


# Linear scans with bytes.find/count and literal-prefix regexes, not a tree build: each runs at
# memory speed (a regex alternation over every "<" is 3x slower, iterparse 20x: measured).
_MEASURE = re.compile(rb"<measure[\s/>]")  # not <measure-style>, <measure-numbering>...
_TIE_TYPE = re.compile(rb"<tie\b[^>]{0,200}?type\s*=\s*[\"'](start|stop)")
_PITCH = re.compile(
    rb"<step>\s*([A-G])\s*</step>(?:\s*<alter>\s*([-+]?[\d.]+)\s*</alter>)?\s*"
    rb"<octave>\s*(-?\d+)\s*</octave>"
)
_STEP = {b"C": 0, b"D": 2, b"E": 4, b"F": 5, b"G": 7, b"A": 9, b"B": 11}
_NOTE_WINDOW = 1 << 14  # bytes: far more than any real <note> element
_TAG_END = (b" ", b">", b"\n", b"\t", b"\r", b"/")


def _musicxml_counts(data: bytes) -> dict[str | None, SourceCount]:
    """Measures of the first part with measures (the reference for bars), notes of all parts.

    Cue notes stay notes: the reference reads them as notes (asap's Bach preludes hide whole
    playback voices as invisible cue notes), so the canonical score holds them.
    """
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        data = data.decode("utf-16", errors="replace").encode("utf-8")
    if b"<!--" in data:  # a comment may hide markup
        data = _strip_comments(data)
    # The first "<score-" is the root element (<score-part> only comes inside it): stops early.
    root = data.find(b"<score-")
    kind = data[root : root + 15] if root >= 0 else b""
    if kind not in (b"<score-partwise", b"<score-timewise"):
        return {}
    parts = _part_starts(data, root)
    if kind == b"<score-timewise":
        measures = len(_MEASURE.findall(data, root))  # measures hold the parts: each is a bar
        parts = []  # every measure repeats the parts: ties are followed as one sequence
    else:
        measures = 0
        for k, start in enumerate(parts):
            end = parts[k + 1] if k + 1 < len(parts) else len(data)
            measures = len(_MEASURE.findall(data, start, end))
            if measures:
                break
    notes = data.count(b"<pitch", root) - _grace_notes(data, root)  # no other tag starts so
    notes -= _tie_continuations(data, root, parts)
    return {None: SourceCount(measures, notes)}


def _strip_comments(data: bytes) -> bytes:
    """The document without its <!-- --> comments (an unclosed one runs to the end)."""
    kept = []
    done = 0
    start = data.find(b"<!--")
    while start >= 0:
        kept.append(data[done:start])
        end = data.find(b"-->", start + 4)
        if end < 0:
            return b"".join(kept)
        done = end + 3
        start = data.find(b"<!--", done)
    kept.append(data[done:])
    return b"".join(kept)


def _part_starts(data: bytes, root: int) -> list[int]:
    """Offsets of the <part> elements (not <part-list>, <part-name>...)."""
    out: list[int] = []
    pos = data.find(b"<part", root)
    while pos >= 0:
        if data[pos + 5 : pos + 6] in _TAG_END:
            out.append(pos)
            if len(out) == 1 and data.count(b"<score-part", root, pos) < 2:
                return out  # the part list names one part: skip a pass over the music
        pos = data.find(b"<part", pos + 5)
    return out


def _note_start(data: bytes, pos: int) -> int:
    """Offset of the <note> element that holds `pos` (-1 when there is none near)."""
    # A window bounds the backward search: a tag missing from the file must not cost a full scan.
    low = max(0, pos - _NOTE_WINDOW)
    start = data.rfind(b"<note", low, pos)
    while start >= 0 and data[start + 5 : start + 6] not in _TAG_END:
        start = data.rfind(b"<note", low, start)  # <notehead>, <notations>: look further back
    return start


def _grace_notes(data: bytes, root: int) -> int:
    """Pitched grace notes (not notes of the canonical score)."""
    seen: set[int] = set()
    pos = data.find(b"<grace", root)
    while pos >= 0:
        start = _note_start(data, pos)
        end = data.find(b"</note>", pos, pos + _NOTE_WINDOW)
        if start >= 0 and data.find(b"<pitch", pos, end if end >= 0 else pos) >= 0:
            seen.add(start)
        pos = data.find(b"<grace", pos + 6)
    return len(seen)


def _tie_continuations(data: bytes, root: int, parts: list[int]) -> int:
    """Pitched notes whose tie stop continues a tie left open in their part (merged there)."""
    by_note: dict[int, tuple[set[bytes], float | None]] = {}  # note start -> (types, pitch)
    for match in _TIE_TYPE.finditer(data, root):
        start = _note_start(data, match.start())
        if start < 0:
            continue
        if start not in by_note:
            by_note[start] = (set(), _pitch(data, start, match.start()))
        by_note[start][0].add(match.group(1))
    count = 0
    part = 0  # index into `parts` of the part holding the note (ties are found in order)
    open_ties: dict[int, set[float]] = {}  # part -> pitches (MIDI numbers) a tie left open
    for start, (types, pitch) in by_note.items():  # document order: dicts keep insertion order
        while part + 1 < len(parts) and parts[part + 1] < start:
            part += 1
        if pitch is None:
            continue
        held = open_ties.setdefault(part, set())
        # A stop (or stop + start: a middle note) continues the open tie of its pitch, as the
        # canonical score merges it; a stop with nothing open stays a note there too.
        if b"stop" in types and pitch in held:
            count += 1
        if b"start" in types:
            held.add(pitch)
        else:
            held.discard(pitch)
    return count


def _pitch(data: bytes, start: int, end: int) -> float | None:
    """MIDI pitch of the note at `start` from its <pitch> (before `end`); None: grace, rest..."""
    found = _PITCH.search(data, start, end)
    if found is None or data.find(b"<grace", start, found.start()) >= 0:
        return None
    step, alter, octave = found.groups()
    try:
        return _STEP[step] + 12 * (int(octave) + 1) + (float(alter) if alter else 0.0)
    except ValueError:
        return None


# --- Humdrum **kern --------------------------------------------------------------------------

# A whole subtoken (between tabs/spaces) with a pitch letter and no rest `r`, grace `q`/`Q` or
# tie continuation/end `_`/`]`: one note head of a chord or a single note.
# Possessive runs, the first without pitch letters: one way to match, so no backtracking.
_KERN_NOTE = re.compile(r"(?<![^\t ])[^\t rqQ_\]a-gA-G]*+[a-gA-G][^\t rqQ_\]]*+(?![^\t ])")


_OPUS_END = re.compile(r"(\*-\t)*\*-")
_OPUS_START = re.compile(r"(\*\*\w+\t)*\*\*\w+")
_OPUS_START_LINE = re.compile(r"^(?:\*\*\w+\t)*\*\*\w+\s*?$", re.MULTILINE)


def _kern_counts(text: str) -> dict[str | None, SourceCount]:
    """Counts of a kern file: one piece (`None`), or pieces "1", "2"... as the readers split it."""
    # Split as the readers do: \x85 and other Unicode breaks are text in a Latin-1 kern file.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if len(_OPUS_START_LINE.findall(text)) < 2:  # one C pass; the opus split is rare
        count = _kern_piece(lines)
        return {} if count is None else {None: count}
    starts = [i for i, line in enumerate(lines) if _OPUS_START.fullmatch(line.rstrip())]
    # Several `**` records: music21 reads an opus, a piece ending at each all-`*-` record.
    ends = [i for i, line in enumerate(lines) if _OPUS_END.fullmatch(line.rstrip())]
    if not ends:
        return {}
    if ends[-1] <= starts[-1]:
        ends.append(len(lines))
    out: dict[str | None, SourceCount] = {}
    for k, end in enumerate(ends):
        start = 0 if k == 0 else ends[k - 1] + 1
        piece = _kern_piece(lines[start:] if k == len(ends) - 1 else lines[start : end + 1])
        if piece is not None:
            out[str(k + 1)] = piece
    return out


def _kern_piece(lines: list[str]) -> SourceCount | None:
    """Measures closed by barline records (or the end) holding data; kern note heads."""
    types: list[str | None] = []  # exclusive interpretation of each spine, left to right
    kern_columns: list[int] = []
    pick: Callable[[list[str]], Any] | None = None
    all_kern = False  # every spine is **kern: the record is counted whole, without splitting it
    measures = notes = 0
    has_data = seen_kern = False
    for line in lines:
        if not line or line[0] == "!":
            continue
        if line[0] == "=":
            if has_data:
                measures += 1
                has_data = False
            continue
        if line[0] == "*":
            types = _next_spines(types, line.split("\t"))
            kern_columns = [i for i, kind in enumerate(types) if kind == "**kern"]
            all_kern = len(kern_columns) == len(types)
            # itemgetter of two or more columns gives a tuple of tokens, of one column the token.
            pick = itemgetter(*kern_columns) if kern_columns else None
            seen_kern = seen_kern or bool(kern_columns)
            continue
        if all_kern:
            music = line
        elif kern_columns:
            tokens = line.split("\t")
            try:
                picked = pick(tokens) if pick is not None else ()
                music = picked if isinstance(picked, str) else "\t".join(picked)
            except IndexError:  # a short record (malformed): its kern tokens that are there
                music = "\t".join(tokens[i] for i in kern_columns if i < len(tokens))
        else:
            continue
        # Null tokens are "."; anything else in a kern spine is data (a note, a rest...).
        if music.strip(".\t"):
            has_data = True
            notes += len(_KERN_NOTE.findall(music))
    if has_data:
        measures += 1  # music after the last barline is a measure of its own
    if measures == 0 and notes == 0 and not seen_kern:
        return None
    return SourceCount(measures, notes)


def _next_spines(types: list[str | None], tokens: list[str]) -> list[str | None]:
    """Spine types after an interpretation record (`**x`, `*^`, `*v`, `*-`, `*+`, `*x`)."""
    if len(tokens) != len(types):
        # Out of step (malformed, or the first record): take the record's own width.
        types = (types + [None] * len(tokens))[: len(tokens)]
    out: list[str | None] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        kind = types[i]
        if token.startswith("**"):
            out.append(token)
        elif token == "*^":
            out.extend((kind, kind))
        elif token == "*v":
            out.append(kind)
            while i + 1 < len(tokens) and tokens[i + 1] == "*v":
                i += 1  # adjacent joins merge into one spine
        elif token == "*-":
            pass
        elif token == "*+":
            out.extend((kind, None))  # the new spine's type comes in a later `**` record
        elif token == "*x" and i + 1 < len(tokens) and tokens[i + 1] == "*x":
            out.extend((types[i + 1], kind))
            i += 1
        else:
            out.append(kind)
        i += 1
    return out


# --- ABC -------------------------------------------------------------------------------------

_FIELD = re.compile(r"([A-Za-z+]):(.*)")
# The same constructs for the tie-free fast path: what is not music, bar lines, notes, rests.
_ABC_SKIP = re.compile(
    r'"[^"]*"?|![^!\s|]{0,40}!|\+[^+\s|]{0,40}\+|\{[^}]*\}?|\[[A-Za-z]:[^\]]*\]?'
)
_ABC_BAR = re.compile(r"\[\||:*\|[|\]:]*|::+|\[(?=\d)")
_ABC_NOTE = re.compile(r"[A-Ga-g]")
_ABC_REST = re.compile(r"[zxZX]")
_ABC_TOKEN = re.compile(
    r"""
    "[^"]*"?                                # chord symbol or annotation
    | ![^!\s|]{0,40}! | \+[^+\s|]{0,40}\+   # decorations
    | \{[^}]*\}?                            # grace group
    | (?P<inline>\[(?P<field>[A-Za-z]):(?P<value>[^\]]*)\]?)   # inline field
    | (?P<bar>\[\||:*\|[|\]:]*|::+|\[(?=\d))
    | (?P<note>(?P<letter>[A-Ga-g])(?P<octave>[,']*))
    | (?P<rest>[zxZX])
    | (?P<open>\[) | (?P<close>\]) | (?P<tie>-)
    """,
    re.VERBOSE,
)


def _abc_counts(text: str) -> dict[str | None, SourceCount]:
    """Per tune (keyed as the readers key it): bar-delimited runs with music, note heads."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if X_LINE.match(line)]
    if not starts:
        return {"1": _abc_tune(lines)} if any(line.startswith("K:") for line in lines) else {}
    out: dict[str | None, SourceCount] = {}
    seen: set[str] = set()
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        match = X_LINE.match(lines[start])
        assert match is not None
        number = match.group(1)
        # A single tune is read whole and keyed by music21's int(X); a book by the X text.
        # (lstrip, not int(): a hostile thousand-digit number must not raise.)
        key = (number.lstrip("0") or "0") if len(starts) == 1 else number
        if key in seen:
            out.pop(key, None)  # a repeated X: number names two tunes: ambiguous, not counted
            continue
        seen.add(key)
        out[key] = _abc_tune(lines[start + 1 : end])
    return out


class _Voice:
    """Counting state of one ABC voice."""

    __slots__ = ("measures", "notes", "run")

    def __init__(self) -> None:
        self.measures = self.notes = 0
        self.run = False  # the current bar-delimited run holds a note or rest


def _abc_tune(lines: list[str]) -> SourceCount:
    """Counts of one tune's lines (after its X: line); max measures over voices, all notes."""
    voices: dict[str, _Voice] = {}
    voice = voices.setdefault("", _Voice())
    in_body = False
    marked: set[tuple[str, int]] = set()  # pitches the last event ties onward
    tied_in: set[tuple[str, int]] = set()  # pitches the current event continues
    last: set[tuple[str, int]] = set()
    last_note: tuple[str, int] | None = None
    chord: list[tuple[str, int]] | None = None
    for raw in lines:
        if raw.startswith("%"):
            continue
        line = raw.split("%", 1)[0] if "%" in raw else raw
        field = _FIELD.match(line)
        if field is not None:
            name = field.group(1)
            if name == "K":
                in_body = True
            elif name == "V" and in_body:
                voice = voices.setdefault(_voice_id(field.group(2)), _Voice())
            continue
        if not in_body:
            continue
        if not marked and chord is None and "-" not in line and "[V:" not in line:
            # No tie in play: count per bar-delimited segment in C, not token by token.
            segments = _ABC_BAR.split(_ABC_SKIP.sub("", line))
            for k, segment in enumerate(segments):
                if k and voice.run:  # a bar line closes the run before this segment
                    voice.measures += 1
                    voice.run = False
                found = len(_ABC_NOTE.findall(segment))
                if found or _ABC_REST.search(segment):
                    voice.notes += found
                    voice.run = True
            last = set()
            continue
        for token in _ABC_TOKEN.finditer(line):
            kind = token.lastgroup
            if kind == "note":
                letter, octave = token.group("letter", "octave")
                key = (letter.upper(), letter.islower() + octave.count("'") - octave.count(","))
                voice.run = True
                if chord is None:
                    tied_in, marked = marked, set()
                    last = {key}
                else:
                    chord.append(key)
                last_note = key
                if key not in tied_in:
                    voice.notes += 1
            elif kind == "rest":
                voice.run = True
                marked, last = set(), set()
            elif kind == "bar":
                if voice.run:
                    voice.measures += 1
                    voice.run = False
            elif kind == "tie":
                if chord is not None and last_note is not None:
                    marked.add(last_note)
                else:
                    marked |= last
            elif kind == "open":
                tied_in, marked, chord = marked, set(), []
            elif kind == "close" and chord is not None:
                last, chord = set(chord), None
            elif kind == "inline" and token.group("field") == "V":
                voice = voices.setdefault(_voice_id(token.group("value")), _Voice())
    for each in voices.values():
        if each.run:
            each.measures += 1  # music after the last bar line is a measure of its own
    return SourceCount(
        max(v.measures for v in voices.values()), sum(v.notes for v in voices.values())
    )


def _voice_id(value: str) -> str:
    """The voice id of a `V:` field (its first word)."""
    words = value.split()
    return words[0] if words else ""
