"""Meter override from a beat annotation file (POP909's `beat_midi.txt`).

Most POP909 MIDI files declare a bogus 1/4 time signature and are performance-timed. Their beat
files are the truth: one line per beat, `<seconds> <beat flag> <downbeat flag>`. This module maps
every note through the beat grid (annotated beat i lands on quarter i, linear in between, the
first and last intervals extended outwards), so that performed time becomes metrical time, then
rebuilds the bars from the downbeats: a bar per downbeat-to-downbeat span with `n/4` for its n
beats, and a pickup for the beats before the first downbeat. Mapped times are rounded to 1/48 of
a quarter (finer than any grid the tokenizer uses; quantisation counts what it moves).
"""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import numpy as np

from pipeline.errors import ScoreParseError
from pipeline.notes import divide
from pipeline.readers.common import make_bars, report_dict
from pipeline.score import Meter, Score, TempoChange

MAP_GRID = 48  # ticks per quarter of the mapped times


def read_beat_file(path: Path) -> tuple[list[float], list[bool]]:
    """Beat times (seconds, increasing) and downbeat flags; ScoreParseError when unusable."""
    try:
        lines = path.read_text().split("\n")
    except OSError as exc:
        raise ScoreParseError(f"{path}: beat file cannot be read: {exc.strerror}") from None
    times: list[float] = []
    downbeats: list[bool] = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        try:
            time, downbeat = float(fields[0]), float(fields[-1]) >= 0.5
        except ValueError:
            raise ScoreParseError(f"{path}:{number}: not a beat line: {line[:60]!r}") from None
        if times and time <= times[-1]:
            raise ScoreParseError(f"{path}:{number}: beat times must increase")
        times.append(time)
        downbeats.append(downbeat)
    if len(times) < 2 or not any(downbeats):
        raise ScoreParseError(f"{path}: needs at least two beats and one downbeat")
    return times, downbeats


def _seconds(score: Score) -> list[tuple[Fraction, float, float]]:
    """(quarter, seconds, seconds per quarter) at each tempo change, for quarter -> seconds."""
    points = []
    tempos = list(score.tempos) or [TempoChange(Fraction(0), 120.0)]
    if tempos[0].onset > 0:
        tempos.insert(0, TempoChange(Fraction(0), tempos[0].bpm))
    seconds = 0.0
    last_q, last_spq = Fraction(0), 60.0 / tempos[0].bpm
    for change in tempos:
        seconds += float(change.onset - last_q) * last_spq
        last_q, last_spq = change.onset, 60.0 / change.bpm
        points.append((last_q, seconds, last_spq))
    return points


def apply_beat_file(score: Score, path: Path) -> Score:
    """`score` re-timed onto the beats of `path`, with bars from its downbeats (see module doc).

    On the note columns: each step is the float arithmetic of a per-note loop (a correctly
    rounded quarter, then the same additions, products and divisions), one numpy pass each.
    """
    times, downbeats = read_beat_file(path)
    anchors = _seconds(score)
    table = score.table
    res = math.lcm(table.resolution, *(a[0].denominator for a in anchors))
    table = table.at(res)
    anchor_ticks = np.array([int(a[0] * res) for a in anchors], dtype=np.int64)
    anchor_s = np.array([a[1] for a in anchors])
    anchor_spq = np.array([a[2] for a in anchors])
    beat_times = np.array(times)

    def to_beats(ticks: np.ndarray) -> np.ndarray:
        k = np.maximum(np.searchsorted(anchor_ticks, ticks, side="right") - 1, 0)
        seconds = anchor_s[k] + divide(ticks - anchor_ticks[k], res) * anchor_spq[k]
        b = np.searchsorted(beat_times, seconds, side="right") - 1
        b = np.minimum(np.maximum(b, 0), len(times) - 2)
        return b + (seconds - beat_times[b]) / (beat_times[b + 1] - beat_times[b])

    start = to_beats(table.onset)
    end = to_beats(table.onset + table.duration)
    earliest = float(start.min()) if len(start) else 0.0
    lead = max(0, -int(earliest // 1))  # whole beats prepended so that no onset is negative
    onset = np.rint((start + lead) * MAP_GRID).astype(np.int64)  # half to even, as round()
    duration = np.maximum(np.rint((end + lead) * MAP_GRID).astype(np.int64) - onset, 1)
    notes = table.with_columns(onset=onset, duration=duration, resolution=MAP_GRID).sorted()
    last_onset = Fraction(int(notes.onset[-1]), MAP_GRID) if len(notes) else None
    counts: Counter[str] = Counter({"beat_file_meter": 1})
    first = downbeats.index(True)
    marks = [i for i, d in enumerate(downbeats) if d]
    raw: list[tuple[Fraction, Meter]] = []
    spans = [b - a for a, b in pairwise(marks)]
    typical = Counter(spans).most_common(1)[0][0] if spans else 4
    if first + lead:
        raw.append((Fraction(first + lead), Meter(typical, 4)))
    for span in spans:
        raw.append((Fraction(span), Meter(span, 4)))
    tail = len(times) - marks[-1]
    raw.append((Fraction(max(tail, 1)), Meter(typical, 4)))
    bars = make_bars(raw, last_onset, counts)
    intervals = sorted(b - a for a, b in pairwise(times))
    bpm = 60.0 / intervals[len(intervals) // 2]
    report = dict(score.report)
    for key, value in report_dict(counts).items():
        report[key] = report.get(key, 0) + value
    return score.replace(
        notes=notes, bars=bars, tempos=(TempoChange(Fraction(0), round(bpm, 3)),), report=report
    ).validate()
