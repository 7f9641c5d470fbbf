"""Readers: one module per format family; `read_items` dispatches on the file extension.

Two readers exist for every format. `fast` (the default) is our own: a streaming MusicXML/MXL
pass, a Humdrum kern reader, an ABC reader, and symusic for MIDI. `reference` is the path the
fast readers are checked against: music21 for notation, miditoolkit for MIDI. A construct a fast
reader does not handle raises `Unsupported`; that file (or that piece of a collection) is read by
the reference reader instead, and its score counts `reader_fallback:<what>` in its report.
Readers are imported on first use, so reading MIDI or kern never pays for importing music21.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pipeline.errors import ScoreParseError
from pipeline.ledger import FALLBACK_PREFIX
from pipeline.readers.common import ItemFailure
from pipeline.readers.fallback import read_fast
from pipeline.score import Score

ReaderKind = Literal["fast", "reference"]
READER_KINDS: tuple[ReaderKind, ...] = ("fast", "reference")
Reader = Callable[..., list[Score | ItemFailure]]

_MUSIC21 = ("pipeline.readers.music21_reader", "read_music21")
_MUSICXML = ("pipeline.readers.musicxml", "read_musicxml")
# extension -> {kind: (module, function)}
READERS: dict[str, dict[ReaderKind, tuple[str, str]]] = {
    ".xml": {"fast": _MUSICXML, "reference": _MUSIC21},
    ".musicxml": {"fast": _MUSICXML, "reference": _MUSIC21},
    ".mxl": {"fast": _MUSICXML, "reference": _MUSIC21},
    ".krn": {"fast": ("pipeline.readers.kern", "read_kern"), "reference": _MUSIC21},
    ".abc": {"fast": ("pipeline.readers.abc", "read_abc"), "reference": _MUSIC21},
    ".mid": {
        "fast": ("pipeline.readers.symusic_reader", "read_midi_fast"),
        "reference": ("pipeline.readers.midi_reader", "read_midi"),
    },
}
READERS[".midi"] = READERS[".mid"]
SUPPORTED_EXTENSIONS = tuple(sorted(READERS))


def reader_for(path: Path, kind: ReaderKind) -> Reader:
    """The reader function of `kind` for `path`'s extension (ScoreParseError when there is none)."""
    if kind not in READER_KINDS:
        raise ValueError(f"unknown reader {kind!r} (choose one of {', '.join(READER_KINDS)})")
    entry = READERS.get(path.suffix.lower())
    if entry is None:
        raise ScoreParseError(
            f"{path}: unsupported file type '{path.suffix or '(none)'}' "
            f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})",
            "unsupported_format",
        )
    module, function = entry[kind]
    reader: Reader = getattr(importlib.import_module(module), function)
    return reader


def read_scores(
    path: str | Path, *, expand_repeats: bool = False, reader: ReaderKind = "fast"
) -> list[Score]:
    """Read every score in `path` (a collection file gives several).

    ScoreParseError when the file, or any piece of it, cannot be read; `read_items` returns the
    readable pieces of a collection together with the failures.
    """
    items = read_items(path, expand_repeats=expand_repeats, reader=reader)
    failures = [i for i in items if isinstance(i, ItemFailure)]
    if failures:
        first = failures[0]
        raise ScoreParseError(
            f"{len(failures)} of {len(items)} pieces cannot be read, first X:{first.item}: {first.detail}",
            first.reason,
        )
    return [i for i in items if isinstance(i, Score)]


def read_items(
    path: str | Path, *, expand_repeats: bool = False, reader: ReaderKind = "fast"
) -> list[Score | ItemFailure]:
    """Every piece of `path` as a score, or as an ItemFailure when that piece alone cannot be read.

    ScoreParseError when the file as a whole cannot be read (missing, empty, unknown type, broken).
    With `reader="fast"`, what the fast reader does not handle is read by the reference reader
    (counted in the score's report as `reader_fallback:<what>`: see `readers.fallback`).
    """
    path = Path(path)
    read = reader_for(path, reader)
    if not path.is_file():
        raise ScoreParseError(f"{path}: no such file", "missing_file")
    if path.stat().st_size == 0:
        raise ScoreParseError(f"{path}: the file is empty", "empty_file")
    if reader == "reference":
        return list(read(path, expand_repeats=expand_repeats))
    reference = reader_for(path, "reference")
    return read_fast(path, read, reference, expand_repeats=expand_repeats)


__all__ = [
    "FALLBACK_PREFIX",
    "READERS",
    "READER_KINDS",
    "SUPPORTED_EXTENSIONS",
    "ItemFailure",
    "ReaderKind",
    "read_items",
    "read_scores",
    "reader_for",
]
