"""What every reader shares: pickup detection, bar padding, the report, tie merging, ABC books,
and a read capped in size."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from pipeline.errors import ScoreParseError
from pipeline.score import Bar, Meter

DEFAULT_METER = Meter(4, 4)
# The largest MIDI file of the corpora is 31 KB: over 2,000 times that is hostile or not music.
MAX_MIDI_BYTES = 64 << 20
MAX_TEXT_BYTES = 64 << 20  # a kern or ABC file: real ones are under 2 MB


@dataclass(frozen=True)
class ItemFailure:
    """One piece of a collection file that could not be read (the others still are)."""

    item: str
    reason: str
    detail: str


# Bars in one piece at most: a longer one is hostile or corrupt input (a 10**9-tick note), and
# building its bars one by one would take minutes before any memory limit stops it.
MAX_BARS = 100_000


def _too_long(bars: int) -> ScoreParseError:
    return ScoreParseError(f"more than {MAX_BARS} bars ({bars:,} or more)", "too_long")


def read_capped(path: Path, limit: int, what: str) -> bytes:
    """The bytes of `path`; ScoreParseError `too_large` over `limit` bytes, before any is read.

    A sparse file costs no disk but would cost its whole size in memory (a 2 GB MIDI file took
    3.3 GB of RSS to be refused). The size comes from the open file, and the read stops past the
    limit all the same (a file that grows meanwhile). OSError propagates: each reader has its own
    reason for an unreadable file.
    """
    fd = os.open(path, os.O_RDONLY)  # not open(): its buffered file object costs more here
    try:
        size = os.fstat(fd).st_size
        if size <= limit:
            # Sized to the file, not to `limit + 1`: a read allocates what it may return. Read
            # on to the end (a file that grew meanwhile), in blocks, to just past the limit.
            pieces = [os.read(fd, size + 1)]
            size = len(pieces[0])
            while pieces[-1] and size <= limit:
                pieces.append(os.read(fd, min(limit + 1 - size, 1 << 20)))
                size += len(pieces[-1])
            data = b"".join(pieces) if len(pieces) > 1 else pieces[0]
    finally:
        os.close(fd)
    if size > limit:
        raise ScoreParseError(
            f"{path}: the {what} is {size:,} bytes, over the {limit:,} byte limit", "too_large"
        )
    return data


def make_bars(
    raw: Sequence[tuple[Fraction, Meter]],
    last_onset: Fraction | None,
    counts: Counter[str],
    *,
    pickup_from_next_meter: bool = False,
) -> tuple[Bar, ...]:
    """Turn (length, meter) pairs into contiguous bars from 0, flagging a pickup.

    A pickup is detected by length, never by bar number: the first bar is a pickup when it is
    shorter than its own meter. With `pickup_from_next_meter` (MIDI, where a pickup is often
    written as a short time signature such as 1/4 before the real one) a single first bar that is
    shorter than the *next* bar's meter is also a pickup, and takes that meter.
    Bars of the last meter are appended (and counted) until every onset lies inside a bar.
    """
    bars: list[Bar] = []
    for length, meter in raw:
        if length <= 0:
            counts["empty_bars_dropped"] += 1
            continue
        bars.append(Bar(bars[-1].end if bars else Fraction(0), length, meter))
    if bars:
        first = bars[0]
        if first.length < first.meter.length:
            bars[0] = Bar(first.start, first.length, first.meter, pickup=True)
        elif (
            pickup_from_next_meter
            and len(bars) > 1
            and bars[1].meter != first.meter
            and first.length < bars[1].meter.length
        ):
            bars[0] = Bar(first.start, first.length, bars[1].meter, pickup=True)
            counts["pickup_meter_from_next_bar"] += 1
    if last_onset is not None:
        meter = bars[-1].meter if bars else DEFAULT_METER
        if not bars:
            counts["default_meter"] += 1
        end = bars[-1].end if bars else Fraction(0)
        if len(bars) + (last_onset - end) / meter.length > MAX_BARS:
            raise _too_long(len(bars) + int((last_onset - end) / meter.length))
        while last_onset >= end:
            bars.append(Bar(end, meter.length, meter))
            end += meter.length
            counts["bars_appended"] += 1
    return tuple(bars)


def report_dict(counts: Counter[str]) -> dict[str, float]:
    """The non-zero counts as a plain dict for `Score.report`."""
    return {key: value for key, value in sorted(counts.items()) if value}


def bars_from_time_signatures(
    changes: Sequence[tuple[Fraction, Meter]], end: Fraction, counts: Counter[str]
) -> list[tuple[Fraction, Meter]]:
    """(length, meter) of the bars that time-signature changes at given times imply, up to `end`.

    For sources without written bar lines (MIDI, some music21 streams). A change that falls
    inside a bar cuts that bar short; several changes at one time: the last wins; no change at
    time 0: 4/4 until the first one (counted as `default_meter`).
    """
    ordered = dict(sorted(changes, key=lambda c: c[0]))
    if not ordered or min(ordered) > 0:
        counts["default_meter"] += 1
        ordered[Fraction(0)] = DEFAULT_METER
    times = sorted(ordered)
    raw: list[tuple[Fraction, Meter]] = []
    cursor = Fraction(0)
    for i, time in enumerate(times):
        meter = ordered[time]
        last = i + 1 == len(times)
        limit = max(end, time + meter.length) if last else times[i + 1]
        while cursor < limit:
            length = meter.length if last else min(meter.length, limit - cursor)
            raw.append((length, meter))
            cursor += length
            if len(raw) > MAX_BARS:
                raise _too_long(len(raw))
    return raw


# -- ABC books ----------------------------------------------------------------------------------
X_LINE = re.compile(r"X:\s*(\d+)")  # the line that opens a tune of an ABC book


def abc_text(path: Path) -> str:
    """The text of an ABC file (UTF-8), or ScoreParseError `encoding` naming the byte."""
    try:
        return read_capped(path, MAX_TEXT_BYTES, "ABC file").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScoreParseError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})", "encoding"
        ) from exc


def split_abc_tunes(text: str) -> list[tuple[str, str]]:
    """(X number, text) of each tune of an ABC book, the file header (minus `%` lines) prepended."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if X_LINE.match(line)]
    if not starts:
        return []
    header = "".join(line for line in lines[: starts[0]] if not line.startswith("%"))
    tunes = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        match = X_LINE.match(lines[start])
        assert match is not None
        tunes.append((match.group(1), header + "".join(lines[start:end])))
    return tunes


# -- ties ---------------------------------------------------------------------------------------
_TIE_OPENS = ("start", "continue")
_TIE_CLOSES = ("stop", "continue")


class TieMerger:
    """music21's tie merging over notes in onset order: a note that closes a tie (`stop`,
    `continue`) and starts where the open note of its pitch ends extends that note.

    `notes` holds `[onset, pitch, duration, *extra]` lists in any time unit (ticks or quarters).
    """

    def __init__(self, counts: Counter[str]) -> None:
        self.notes: list[list[Any]] = []
        self._open: dict[int, int] = {}  # pitch -> index in `notes` of the note a tie continues
        self._counts = counts

    def add(self, onset: Any, pitch: int, duration: Any, tie: str | None, *extra: Any) -> None:
        """One note (or chord member) with its tie type (`start`, `continue`, `stop` or None)."""
        held = self._open.get(pitch)
        if held is not None and tie in _TIE_CLOSES:
            prev = self.notes[held]
            if prev[0] + prev[2] == onset:
                prev[2] = onset + duration - prev[0]
                self._counts["ties_merged"] += 1
                if tie == "stop":
                    del self._open[pitch]
                return
        if tie == "stop" and held is None:
            self._counts["tie_without_start"] += 1
        self.notes.append([onset, pitch, duration, *extra])
        if tie in _TIE_OPENS:
            self._open[pitch] = len(self.notes) - 1
        else:
            self._open.pop(pitch, None)
