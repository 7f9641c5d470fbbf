"""Readers: one module per format family; `read_scores` dispatches on the file extension."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.errors import ScoreParseError
from pipeline.readers.common import ItemFailure
from pipeline.readers.midi_reader import read_midi
from pipeline.readers.music21_reader import read_music21
from pipeline.score import Score

Reader = Callable[..., list[Score] | list[Score | ItemFailure]]

READERS: dict[str, Reader] = {
    ".xml": read_music21,
    ".musicxml": read_music21,
    ".mxl": read_music21,
    ".krn": read_music21,
    ".abc": read_music21,
    ".mid": read_midi,
    ".midi": read_midi,
}
SUPPORTED_EXTENSIONS = tuple(sorted(READERS))


def read_scores(path: str | Path, *, expand_repeats: bool = False) -> list[Score]:
    """Read every score in `path` (a collection file gives several).

    ScoreParseError when the file, or any piece of it, cannot be read; `read_items` returns the
    readable pieces of a collection together with the failures.
    """
    items = read_items(path, expand_repeats=expand_repeats)
    failures = [i for i in items if isinstance(i, ItemFailure)]
    if failures:
        first = failures[0]
        raise ScoreParseError(
            f"{len(failures)} of {len(items)} pieces cannot be read, first X:{first.item}: {first.detail}",
            first.reason,
        )
    return [i for i in items if isinstance(i, Score)]


def read_items(path: str | Path, *, expand_repeats: bool = False) -> list[Score | ItemFailure]:
    """Every piece of `path` as a score, or as an ItemFailure when that piece alone cannot be read.

    ScoreParseError when the file as a whole cannot be read (missing, empty, unknown type, broken).
    """
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ScoreParseError(
            f"{path}: unsupported file type '{path.suffix or '(none)'}' "
            f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})",
            "unsupported_format",
        )
    if not path.is_file():
        raise ScoreParseError(f"{path}: no such file", "missing_file")
    if path.stat().st_size == 0:
        raise ScoreParseError(f"{path}: the file is empty", "empty_file")
    return list(reader(path, expand_repeats=expand_repeats))


__all__ = ["READERS", "SUPPORTED_EXTENSIONS", "ItemFailure", "read_items", "read_scores"]
