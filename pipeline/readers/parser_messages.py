"""What a parser says while it reads: its stderr lines and Python warnings, kept as text.

music21 reports what it repairs on its own: `environLocal.warn` writes straight to `sys.stderr`
(`humdrum.spineParser: WARNING: Error in parsing event ...`) and its MusicXML and ABC code use
`warnings.warn` (it does not use `logging`). Left alone, a build's log gathers those lines with
no file named. Inside `capture()` they are collected instead, so a reader counts them per piece
(`parser_warnings` in the score's report) and ingest names the file and its first messages in
the ledger and its summary.

Captures nest: on leaving, an inner capture hands what it collected to the enclosing one, so the
music21 reader can count per piece while ingest, around the whole read, sees every message of
the file in order. Warnings about code rather than the file (deprecations) are ignored. Only
Python-level writes are captured: a C library writing to file descriptor 2 is not.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from pipeline.readers.common import ItemFailure
from pipeline.score import Score

PARSER_WARNINGS = "parser_warnings"  # the score report's count of what its reading said

MAX_MESSAGE_CHARS = 300  # one message is one line of at most this many characters

_CODE_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)
_open: list[list[str]] = []  # the messages of each capture now open, innermost last


def one_line(text: str) -> str:
    """`text` on one line, whitespace collapsed, cut to MAX_MESSAGE_CHARS."""
    line = " ".join(text.split())
    return line if len(line) <= MAX_MESSAGE_CHARS else line[: MAX_MESSAGE_CHARS - 1] + "…"


class _Lines(io.TextIOBase):
    """A text stream that appends each non-blank line written to it to a list, as one message."""

    def __init__(self, messages: list[str]) -> None:
        self._messages = messages
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *whole, self._partial = (self._partial + text).split("\n")
        self._messages.extend(one_line(line) for line in whole if line.strip())
        return len(text)

    def close(self) -> None:
        if self._partial.strip():
            self._messages.append(one_line(self._partial))
        self._partial = ""
        super().close()


@contextlib.contextmanager
def capture() -> Iterator[list[str]]:
    """Collect what is written to `sys.stderr` and every warning raised, as one-line messages.

    Yields the list the messages are appended to (complete once the block ends); nothing of it
    reaches the real stderr.
    """
    messages: list[str] = []
    lines = _Lines(messages)

    def keep(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        messages.append(one_line(f"{category.__name__}: {message}"))

    _open.append(messages)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(lines):
            # Every warning about the file counts, even one its call site raised before.
            warnings.simplefilter("always")
            for category in _CODE_WARNINGS:
                warnings.simplefilter("ignore", category)
            warnings.showwarning = keep
            yield messages
    finally:
        lines.close()
        _open.pop()
        if _open:
            _open[-1].extend(messages)


KEPT_MESSAGES = 2  # messages a file keeps as text (the rest are counted)


@dataclass(frozen=True)
class FileMessages:
    """What reading one file said: how many messages, and the first `KEPT_MESSAGES` of them."""

    count: int
    first: tuple[str, ...]


def attribute(
    items: list[Score | ItemFailure], messages: list[str]
) -> tuple[list[Score | ItemFailure], FileMessages | None]:
    """The items, with the messages no piece counted counted on the first score, and the file's
    record (None when reading it said nothing).

    A reader counts what it can tie to a piece (`parser_warnings` in the score's report); what
    it cannot (a piece of a collection that failed, a message outside any piece's reading) is
    counted on the file's first score, so that the counts of a file's scores add up to what it
    said.
    """
    if not messages:
        return items, None
    scores = [(k, item) for k, item in enumerate(items) if isinstance(item, Score)]
    rest = len(messages) - sum(int(s.report.get(PARSER_WARNINGS, 0)) for _, s in scores)
    if scores and rest > 0:
        at, first = scores[0]
        items = [*items[:at], first.with_counts({PARSER_WARNINGS: rest}), *items[at + 1 :]]
    return items, FileMessages(len(messages), tuple(messages[:KEPT_MESSAGES]))
