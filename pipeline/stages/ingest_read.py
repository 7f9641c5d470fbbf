"""What ingest's isolated child does with one file: read it, count its source, find its voices.

`parse_job` runs in a forked child under ingest's limits (see `executor`): it reads the file with
the chosen reader (`readers.read_items`, falling back on the reference reader where the fast one
does not handle a construct), attaches what the source holds as written (`source_counts`, for
verify), applies a beat file, finds the voice groups of an ABC book, and gathers what the
parser printed. Everything it returns is cached (`ingest_cache`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ScoreParseError
from pipeline.readers import ItemFailure, ReaderKind, parser_messages, read_items
from pipeline.readers.beats import apply_beat_file
from pipeline.readers.common import abc_text
from pipeline.readers.parser_messages import FileMessages
from pipeline.readers.source_counts import SourceCount, count_source
from pipeline.readers.voices import VoiceGroup, find_voice_groups
from pipeline.score import Score
from pipeline.source_files import os_problem

# Imported by each worker before it forks a child per file (music21 stays: the fallback).
PRELOAD = (
    "music21",
    "miditoolkit",
    "symusic",
    "pipeline.readers.music21_reader",
    "pipeline.readers.midi_reader",
    "pipeline.readers.musicxml",
    "pipeline.readers.kern",
    "pipeline.readers.abc",
    "pipeline.readers.symusic_reader",
)


Parsed = list[Score | ItemFailure | VoiceGroup | FileMessages]


@dataclass(frozen=True)
class ParseJob:
    """What a child needs to parse one file."""

    path: str
    expand_repeats: bool
    beat_file: str | None
    reader: ReaderKind = "fast"


def parse_job(job: ParseJob) -> Parsed:
    """Read one file (runs in the isolated child): its pieces, or failures of single pieces,
    then the voice groups of an ABC book (tunes that are the voices of one piece), if any, and
    what the parser said while reading it (`FileMessages`), if anything.

    Each score also carries what its source holds as written (`source_measures`,
    `source_notes`, counted without any parser) for verify's truncation check, and how many
    messages its reading printed (`parser_warnings`): none of them reach the build's log.
    """
    try:  # the parent read it, but permissions may have changed since: never cache that
        os.close(os.open(job.path, os.O_RDONLY | os.O_NONBLOCK))
    except OSError as exc:
        reason, detail = os_problem(exc)
        raise ScoreParseError(detail, reason) from None
    with parser_messages.capture() as said:
        items = read_items(job.path, expand_repeats=job.expand_repeats, reader=job.reader)
    items, messages = parser_messages.attribute(items, said)
    try:
        written = count_source(Path(job.path))
    except ScoreParseError:
        written = {}
    items = [
        _with_source_count(s, written.get(s.meta.collection_item)) if isinstance(s, Score) else s
        for s in items
    ]
    if job.beat_file is not None:
        beat_path = Path(job.path).parent / job.beat_file
        items = [apply_beat_file(s, beat_path) if isinstance(s, Score) else s for s in items]
    return [*items, *_voice_groups(Path(job.path), items), *([messages] if messages else [])]


def _voice_groups(path: Path, items: list[Score | ItemFailure]) -> list[VoiceGroup]:
    """The voice groups of an ABC book (none for other files, or for text that is not UTF-8)."""
    if path.suffix.lower() != ".abc" or len(items) < 2:
        return []
    try:
        return find_voice_groups(abc_text(path), items)
    except ScoreParseError:
        return []


def _with_source_count(score: Score, count: SourceCount | None) -> Score:
    if count is None:
        return score
    counts = {"source_notes": count.notes}
    if count.measures:  # MIDI writes no measures
        counts["source_measures"] = count.measures
    return score.with_counts(counts)
