"""Parser warnings in ingest's ledger and summary: counted per item, named by file.

What a parser printed while reading a file is captured in the isolated child
(`readers.parser_messages`) and kept with the file's cached outcome. Here it becomes text a
person reads: a `parser_warnings:<n>` part in an accepted item's ledger detail (with the file's
first messages on the first such item of the file), and one summary line per ingest run instead
of a log full of lines that name no file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.readers.parser_messages import PARSER_WARNINGS, FileMessages
from pipeline.source_files import valid_text

DETAIL_PREFIX = f"{PARSER_WARNINGS}:"  # in an ingest detail: this item's reading printed warnings


def ledger_detail(count: int, messages: tuple[str, ...] = ()) -> str:
    """`parser_warnings:<count>`, followed by the quoted messages when given.

    The ledger splits details at "; ", so a message's own "; " becomes ", ".
    """
    if not messages:
        return f"{DETAIL_PREFIX}{count}"
    quoted = " | ".join(f'"{m.replace("; ", ", ")}"' for m in messages)
    return f"{DETAIL_PREFIX}{count} (first: {quoted})"


@dataclass
class WarningTally:
    """The parser warnings of one ingest run: how many, in how many files, and the first."""

    messages: int = 0
    files: int = 0
    first: str | None = None  # "<file id>: <message>"

    def add(self, file_id: str, said: FileMessages) -> None:
        """Count one file's messages."""
        self.messages += said.count
        self.files += 1
        if self.first is None and said.first:
            self.first = valid_text(f"{file_id}: {said.first[0]}")

    def as_dict(self) -> dict[str, Any]:
        """The tally for a JSON summary."""
        return {"messages": self.messages, "files": self.files, "first": self.first}

    def line(self) -> str | None:
        """`<n> parser warnings in <m> files, first: <file>: <text>`, or None when there were none."""
        if not self.messages:
            return None
        said = f"{self.messages:,} parser warning" + ("" if self.messages == 1 else "s")
        files = "1 file" if self.files == 1 else f"{self.files:,} files"
        return f"{said} in {files}, first: {self.first}"
