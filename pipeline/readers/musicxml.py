"""Fast MusicXML / MXL reader: the canonical score music21 (the reference) gives, in one streaming pass.

The C expat parser behind ElementTree hands (event, element) pairs to a plain list; one
<measure> at a time is read and cleared (memory stays at one measure). Times are integer ticks
over a base every `<divisions>` of the file divides, made exact Fractions once per value at the
end. A multi-staff part becomes one part per staff, notes sound at written pitch (music21 does
not apply <transpose>), cue notes sound, chord notes last as long as the chord's first note,
grace and unpitched notes and chord symbols are dropped and counted. Where music21 misreads a
construct this reader follows the MusicXML specification: a tie belongs to the chord note that
carries it (music21 lends a chord's first tie to all its notes), a <chord/> note after a
direction sounds with its chord, a rest is never a chord note, and <alter> (not a display
<accidental>) sets the pitch; `quirks=True` reproduces those misreadings instead, so that the
crosscheck can name them."""

from __future__ import annotations

import gc
import math
import re
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from fractions import Fraction
from pathlib import Path
from xml.etree import ElementTree
from xml.etree.ElementTree import Element

from pipeline.errors import ScoreParseError, ScoreValidationError, Unsupported
from pipeline.readers.common import (
    DEFAULT_METER,
    ItemFailure,
    TieMerger,
    bars_from_time_signatures,
    make_bars,
    report_dict,
)
from pipeline.readers.conventions import article_first
from pipeline.readers.musicxml_archive import read_document, root_tag
from pipeline.readers.musicxml_elements import key_name
from pipeline.readers.musicxml_measures import DEFAULT_DIVISIONS, NoteEvent, PartReader
from pipeline.score import Meter, Note, Part, Score, ScoreMeta, TempoChange

QUIRK_PREFIX = "m21_quirk:"
# music21's misreadings that `quirks=True` reproduces (documented in `read_musicxml`)
QUIRKS = frozenset(
    {"chord-tie-lent", "accidental-sounded", "detached-chord-note", "rest-in-chord-c4"}
)
MAX_DEPTH = 64  # real MusicXML nests about 8 deep
MAX_PENDING_ELEMENTS = 2_000_000  # elements held at once (one measure, or the header)
MAX_TICK_BASE = 10**15
_CHUNK = 1 << 16
_DIVISIONS = re.compile(rb"<divisions>\s*([^<\s]*)\s*</divisions>")
# music21 moves a trailing article to the front of titles ("Ale is Dear, The")
# music21's instrument name for each General MIDI program (instrumentFromMidiProgram)
_GM_NAMES = "|".join(
    (
        "Piano|Piano|Electric Piano|Piano|Electric Piano|Electric Piano|Harpsichord",
        "Clavichord|Celesta|Glockenspiel|Glockenspiel|Vibraphone|Marimba|Xylophone",
        "Tubular Bells|Dulcimer|Electric Organ|Electric Organ|Electric Organ|Pipe Organ",
        "Reed Organ|Accordion|Harmonica|Accordion|Acoustic Guitar|Acoustic Guitar",
        "Electric Guitar|Electric Guitar|Electric Guitar|Electric Guitar|Electric Guitar",
        "Electric Guitar|Acoustic Bass|Electric Bass|Electric Bass|Fretless Bass",
        "Electric Bass|Electric Bass|Electric Bass|Electric Bass|Violin|Viola|Violoncello",
        "Contrabass|StringInstrument|StringInstrument|Harp|Timpani|StringInstrument",
        "StringInstrument|StringInstrument|StringInstrument|Choir|Voice|Voice|Sampler|Trumpet",
        "Trombone|Tuba|Trumpet|Horn|Brass|Brass|Brass|Soprano Saxophone|Alto Saxophone",
        "Tenor Saxophone|Baritone Saxophone|Oboe|English Horn|Bassoon|Clarinet|Piccolo|Flute",
        "Recorder|Pan Flute|Pan Flute|Shakuhachi|Whistle|Ocarina|Sampler|Sampler|Sampler",
        "Sampler|Sampler|Sampler|Sampler|Sampler|Sampler|Sampler|Sampler|Sampler|Sampler",
        "Sampler|Sampler|Sampler|Sampler|Sampler|Sampler|Sampler|Sampler|Sampler|Sampler",
        "Sampler|Sitar|Banjo|Shamisen|Koto|Kalimba|Bagpipes|Violin|Shehnai|Glockenspiel|Agogo",
        "Steel Drum|Woodblock|Taiko|Tom-Tom|Sampler|Sampler|Sampler|Sampler|Sampler|Sampler",
        "Sampler|Sampler|Sampler|Sampler",
    )
).split("|")


def read_musicxml(
    path: Path, *, expand_repeats: bool = False, quirks: bool = False
) -> list[Score | ItemFailure]:
    """Read a .xml / .musicxml / .mxl file into one canonical score, as `read_music21` would.

    With `quirks`, reproduce music21's misreadings too, each counted where it changed the reading
    as `m21_quirk:<name>`: chord-tie-lent (a chord's first tie given to its untied notes),
    accidental-sounded (a display <accidental> sounded where <pitch> has no <alter>),
    detached-chord-note (a <chord/> note not right after a <note> starts a new chord at the
    current position), rest-in-chord-c4 (a rest grouped into a chord sounds as C4)."""
    if expand_repeats:
        raise Unsupported("expand_repeats")
    data = read_document(path)
    root = root_tag(data, path)
    if root == "score-timewise":
        raise Unsupported("musicxml:score-timewise")
    if root != "score-partwise":
        raise ScoreParseError(f"{path}: root element <{root}> is not <score-partwise>")
    # The tree builder allocates ~20 objects per note: the cyclic collector would scan them again
    # and again (measured: a third of the parse time); none of them are cyclic.
    collecting = gc.isenabled()
    gc.disable()
    try:
        base = _tick_base(data)
        score = _Builder(path, base, QUIRKS if quirks else frozenset()).read(data)
        if quirks:
            score = _effective_quirks(score, lambda active: _Builder(path, base, active).read(data))
        return [score]
    except RecursionError as exc:  # never expected: nothing here recurses on the document
        raise ScoreParseError(f"{path}: {exc}", "malformed_xml") from exc
    except ScoreValidationError as exc:  # the contract: bad input raises ScoreParseError only
        raise ScoreParseError(f"{path}: {exc}", "invalid_score") from exc
    except ScoreParseError as exc:
        if str(path) in str(exc):
            raise
        raise ScoreParseError(f"{path}: {exc}", exc.reason) from exc
    finally:
        if collecting:
            gc.enable()


def _effective_quirks(score: Score, read: Callable[[frozenset[str]], Score]) -> Score:
    """The reading without each quirk that did not change it, so that only quirks that matter
    are counted (a quirk can fire, e.g. on a chord note after a <backup>, and change nothing)."""
    active = QUIRKS
    for name in sorted(k for k in score.report if k.startswith(QUIRK_PREFIX)):
        fewer = active - {name.removeprefix(QUIRK_PREFIX)}
        other = read(fewer)
        if _reading(other) == _reading(score):
            score, active = other, fewer
    return score


def _reading(score: Score) -> tuple[object, ...]:
    return (score.notes, score.bars, score.tempos, score.key, score.parts)


def _tick_base(data: bytes) -> int:
    """Ticks per quarter: a multiple of music21's default divisions and of every <divisions>."""
    base = DEFAULT_DIVISIONS
    found: list[bytes] = _DIVISIONS.findall(data)
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:  # UTF-16
        with suppress(UnicodeError):  # expat refuses it later
            found = _DIVISIONS.findall(data.decode("utf-16").encode())
    for raw in set(found):
        try:
            value = int(raw)
        except ValueError:
            continue  # read (and refused if fractional) where it is used
        if value > 0:
            base = math.lcm(base, value)
    if base > MAX_TICK_BASE:
        raise Unsupported("musicxml:divisions", f"tick base {base}")
    return base


class _Builder:
    """The streaming pass over one document and the assembly of its score."""

    def __init__(self, path: Path, ticks: int, quirks: frozenset[str]) -> None:
        self.path = path
        self.L = ticks
        self.quirks = quirks
        self.counts: Counter[str] = Counter()
        self.part_names: dict[str, str] = {}
        self.first_part_id: str | None = None
        self.work_title: str | None = None
        self.movement_title: str | None = None
        self.composers: list[str] = []
        self.finale = False
        self.seen_identification = False
        self.parts: list[tuple[str, PartReader]] = []

    def read(self, data: bytes) -> Score:
        """Parse `data` and build the score."""
        depth = pending = 0
        reader: PartReader | None = None
        part_id = ""
        parser = ElementTree.XMLParser()
        events: list[tuple[str, Element]] = []
        # The C parser appends (event, element) pairs to a plain list: iterparse's generator
        # layer costs more than the whole parse (measured: ~3x on an opus-size file).
        setevents = getattr(parser, "_setevents", None)  # what XMLPullParser uses (3.4+)
        if setevents is None:
            raise Unsupported("musicxml:parser", "this Python's XMLParser has no _setevents")
        setevents(events, ("start", "end"))
        view = memoryview(data)
        try:
            for begin in [*range(0, len(data), _CHUNK), -1]:
                if begin >= 0:
                    parser.feed(view[begin : begin + _CHUNK])
                else:
                    parser.close()
                for event, el in events:
                    if event == "start":
                        depth += 1
                        if depth > MAX_DEPTH:
                            raise ScoreParseError(
                                f"elements nested over {MAX_DEPTH} deep", "malformed_xml"
                            )
                        if depth == 2 and el.tag == "part":
                            reader = PartReader(self.L, self.counts, self.finale, self.quirks)
                            part_id = el.get("id") or ""
                        continue
                    depth -= 1
                    pending += 1
                    if depth == 2:
                        if reader is not None and el.tag == "measure":
                            reader.measure(el)
                            el.clear()
                            pending = 0
                    elif depth == 1:
                        if el.tag == "part" and reader is not None:
                            self._part_done(part_id, reader)
                            reader = None
                        else:
                            self._header(el)
                        el.clear()
                        pending = 0
                    if pending > MAX_PENDING_ELEMENTS:
                        raise ScoreParseError(
                            f"over {MAX_PENDING_ELEMENTS} elements in one measure", "too_large"
                        )
                events.clear()
        except ElementTree.ParseError as exc:
            raise ScoreParseError(f"not well-formed XML ({exc})", "malformed_xml") from exc
        return self._score()

    # -- header --------------------------------------------------------------------------------
    def _header(self, el: Element) -> None:
        tag = el.tag
        if tag == "part-list":
            for score_part in el.iterfind("score-part"):
                pid = score_part.get("id")
                if pid is None:
                    continue
                if self.first_part_id is None:
                    self.first_part_id = pid
                self.part_names[pid] = _part_name(score_part)
        elif tag == "work" and self.work_title is None:
            self.work_title = el.findtext("work-title") or None
        elif tag == "movement-title" and self.movement_title is None:
            self.movement_title = el.text or None
        elif tag == "identification" and not self.seen_identification:
            self.seen_identification = True
            for creator in el.iterfind("creator"):
                if creator.get("type") == "composer":
                    self.composers.append((creator.text or "").strip())
            encoding = el.find("encoding")
            if encoding is not None:
                for software in encoding.iterfind("software"):
                    if text := (software.text or "").strip():
                        self.finale = "Finale" in text
                        break

    def _part_done(self, part_id: str, reader: PartReader) -> None:
        pid = part_id or self.first_part_id
        if pid is None or pid not in self.part_names:
            return  # music21 skips a part the part-list does not declare
        self.parts.append((pid, reader))

    # -- assembly ------------------------------------------------------------------------------
    def _score(self) -> Score:
        counts = self.counts
        # one output part per xml part, or per staff of a multi-staff part (music21's PartStaff)
        outputs: list[tuple[str, PartReader, int | None]] = []
        for pid, reader in self.parts:
            if reader.max_staves > 1:
                outputs.extend((pid, reader, staff) for staff in sorted(reader.staff_keys - {0}))
            else:
                outputs.append((pid, reader, None))
        parts = [Part(i, self.part_names[pid]) for i, (pid, _, _) in enumerate(outputs)]
        raw_notes: list[tuple[int, int, int, int, int]] = []
        for index, (_, reader, staff) in enumerate(outputs):
            if reader.lent:
                raw_notes.extend(_lent_ties(reader, staff, index, counts))
            else:
                raw_notes.extend(_merge_ties(_staff_events(reader.events, staff), index, counts))
        raw_notes.sort()
        frac = _Fractions(self.L)
        cache, new = frac.cache, tuple.__new__  # Note(...) through its generated __new__ is slower
        notes: list[Note] = [
            new(
                Note,
                (cache[o] if o in cache else frac(o), p, cache[d] if d in cache else frac(d), v, i),
            )
            for o, p, d, v, i in raw_notes
        ]
        reference = next(((r, s) for _, r, s in outputs if r.measures), None)
        if reference is None:
            counts["bars_from_time_signatures"] += 1
            raw_bars = bars_from_time_signatures([], Fraction(0), counts)
        else:
            raw_bars = self._bars(*reference, frac)
        bars = make_bars(raw_bars, notes[-1].onset if notes else None, counts)
        return Score(
            meta=ScoreMeta(
                self.path.name, self._title(), _composer(self.composers), str(self.path)
            ),
            notes=tuple(notes),
            bars=bars,
            parts=tuple(parts) if parts else (Part(0),),
            tempos=self._tempos(outputs, frac),
            key=self._key(outputs),
            report=report_dict(counts),
        ).validate()

    def _bars(
        self, reader: PartReader, staff: int | None, frac: _Fractions
    ) -> list[tuple[Fraction, Meter]]:
        """(length, meter) of the reference part's measures, as `_measure_bars` computes them."""
        first = next((m for s, m in reader.first_meters if _on_staff(s, staff)), None)
        if first is None:
            self.counts["default_meter"] += 1
        current = first or DEFAULT_METER
        measures = reader.measures
        raw: list[tuple[Fraction, Meter]] = []
        for i, info in enumerate(measures):
            meter = next((m for s, m in info.meters if _on_staff(s, staff)), None)
            if meter is not None:
                current = meter
            if i + 1 < len(measures):
                length = frac(measures[i + 1].offset - info.offset)
            else:
                highs = reader.last_highs
                end = max(h for s, h in highs.items() if _on_staff(s, staff) or staff is None)
                length = frac(end) if end > 0 else current.length
            raw.append((length, current))
        return raw

    def _tempos(
        self, outputs: list[tuple[str, PartReader, int | None]], frac: _Fractions
    ) -> tuple[TempoChange, ...]:
        found: dict[int, float] = {}
        for _, reader, staff in outputs:
            for onset, _, mark_staff, bpm in sorted(reader.tempos):
                if _on_staff(mark_staff, staff):
                    found.setdefault(onset, bpm)
        return tuple(TempoChange(frac(onset), bpm) for onset, bpm in sorted(found.items()))

    def _key(self, outputs: list[tuple[str, PartReader, int | None]]) -> str | None:
        for _, reader, staff in outputs:
            for key_staff, fifths, mode, _ in reader.keys:
                if _on_staff(key_staff, staff):
                    return key_name(fifths, mode)
        return None

    def _title(self) -> str:
        work, movement = self.work_title, self.movement_title
        if work == movement:
            work = None  # music21 drops a work title that repeats the movement title
        return article_first(work or movement or self.path.name)


def _on_staff(element_staff: int, staff: int | None) -> bool:
    """Whether an element of `element_staff` (0: every staff) belongs to output staff `staff`."""
    return staff is None or element_staff == 0 or element_staff == staff


def _staff_events(events: list[NoteEvent], staff: int | None) -> list[NoteEvent]:
    if staff is None:
        return sorted(events)
    return sorted(e for e in events if e.staff == 0 or e.staff == staff)


def _merge_ties(
    events: list[NoteEvent], part: int, counts: Counter[str]
) -> list[tuple[int, int, int, int, int]]:
    """Tied notes of one part merged into one, exactly as the reference's `_part_notes` does."""
    ties = TieMerger(counts)
    for event in events:
        ties.add(event.onset, event.pitch, event.duration, event.tie, event.velocity, part)
    return [(o, p, d, v, i) for o, p, d, v, i in ties.notes]


def _lent_ties(
    reader: PartReader, staff: int | None, part: int, counts: Counter[str]
) -> list[tuple[int, int, int, int, int]]:
    """music21's merge of one part, with the ties it lends chord notes (quirks only), where it
    differs from the merge of the written ties (then counted); else the written one."""
    events = list(reader.events)
    for i, tie in reader.lent.items():
        events[i] = events[i]._replace(tie=tie)
    lent_counts: Counter[str] = Counter()
    written_counts: Counter[str] = Counter()
    lent = _merge_ties(_staff_events(events, staff), part, lent_counts)
    written = _merge_ties(_staff_events(reader.events, staff), part, written_counts)
    if lent == written:  # no effect: the reading (and its counts) stay as written
        counts.update(written_counts)
        return written
    counts.update(lent_counts)
    counts["m21_quirk:chord-tie-lent"] += max(len(written) - len(lent), 1)
    return lent


class _Fractions:
    """Ticks -> quarter-note Fractions, memoised, rounded like the reference past 1/10000."""

    def __init__(self, ticks: int) -> None:
        self.L = ticks
        self.cache: dict[int, Fraction] = {}

    def __call__(self, value: int) -> Fraction:
        found = self.cache.get(value)
        if found is None:
            found = Fraction(value, self.L)
            if found.denominator > 10_000:
                found = found.limit_denominator(10_000)
            self.cache[value] = found
        return found


def _part_name(score_part: Element) -> str:
    """music21's partName: the <part-name>, else the <instrument-name>, else the name of the
    instrument music21 picks for the <midi-program>."""
    for path in ("part-name", "score-instrument/instrument-name"):
        text = score_part.findtext(path)
        if text:
            return text.strip().replace("\n", " ")
    midi = score_part.find("midi-instrument")
    if midi is None or (midi.findtext("midi-unpitched") or "").strip():
        return ""
    try:
        program = max(int((midi.findtext("midi-program") or "").strip()) - 1, 0)
    except ValueError:
        return ""
    return _GM_NAMES[program] if program < len(_GM_NAMES) else ""


def _composer(names: list[str]) -> str:
    if len(names) <= 2:
        return " and ".join(names)
    return f"{names[0]} and {len(names) - 1} others"
