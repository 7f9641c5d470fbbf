"""What every reader shares: pickup detection, bar padding to cover the notes, and the report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from pipeline.score import Bar, Meter

DEFAULT_METER = Meter(4, 4)


@dataclass(frozen=True)
class ItemFailure:
    """One piece of a collection file that could not be read (the others still are)."""

    item: str
    reason: str
    detail: str


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
    return raw
