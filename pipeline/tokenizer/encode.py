"""Encoding a quantised, meter-normalised score into Extended REMI token ids.

The score must already be on the vocabulary's grid with every bar a full bar of a supported
meter (run `normalize_meters` and `quantize` first); anything else is a TokenizeError that says
which stage is missing. Parts are merged into one stream: two parts sounding the same pitch at the
same tick for the same duration are one event (counted as `unison_merged`); durations longer than
the longest Dur token are clipped (counted as `durations_clipped`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from pipeline.errors import TokenizeError
from pipeline.notes import int_array, magnitude
from pipeline.score import NoteTable, Score
from pipeline.tokenizer.vocab import Vocab


@dataclass(frozen=True)
class Encoding:
    """Token ids plus what encoding changed (`durations_clipped`, `unison_merged`)."""

    ids: list[int]
    report: dict[str, int] = field(default_factory=dict)


def to_ticks(value: Fraction, resolution: int, what: str, score_id: str) -> int:
    """`value` quarters as an exact tick count; TokenizeError when it is off the grid."""
    den = value.denominator
    if resolution % den:
        raise TokenizeError(
            f"{score_id}: {what} {value} quarters is not on the grid of {resolution} per quarter "
            "(quantise the score first)"
        )
    return value.numerator * (resolution // den)


def encode_score(score: Score, vocab: Vocab, composer: str | None = None) -> Encoding:
    """Encode `score` with `Composer_<composer>` (None -> `Composer_None`) and its tempo bin.

    Works on the score's note columns: one numpy pass per step, no Python object per note.
    """
    res = vocab.resolution
    sid = score.meta.id or "<score>"
    table = score.table
    onset, pitch, duration = _grid_columns(table, vocab, sid)
    counts: dict[str, int] = {}
    clipped = duration > vocab.max_duration
    if clipped.any():
        counts["durations_clipped"] = int(clipped.sum())
        duration = np.where(clipped, vocab.max_duration, duration)
    # Events in token order (tick, pitch descending, duration), unisons of two parts made one.
    order = np.lexsort((duration, -pitch, onset))
    onset, pitch, duration = onset[order], pitch[order], duration[order]
    distinct = np.ones(len(onset), dtype=bool)
    distinct[1:] = (
        (onset[1:] != onset[:-1]) | (pitch[1:] != pitch[:-1]) | (duration[1:] != duration[:-1])
    )
    if not distinct.all():
        counts["unison_merged"] = int(len(distinct) - distinct.sum())
        onset, pitch, duration = onset[distinct], pitch[distinct], duration[distinct]

    layout = vocab.bar_layout  # TS id and positions of each meter
    bar_id = vocab.index["Bar"]
    starts: list[int] = []
    header: list[int] = []  # Bar, TS_<n/d> of each bar
    ends: list[int] = []
    for b, bar in enumerate(score.bars):
        meter, length = bar.meter, bar.length
        entry = layout.get(meter)
        full = length.numerator * meter.denominator == 4 * meter.numerator * length.denominator
        if entry is None or not full:
            raise TokenizeError(
                f"{sid}: bar {b} is {length} quarters of {meter}, not a full bar of a "
                "supported meter (normalise meters first)"
            )
        start = to_ticks(bar.start, res, f"bar {b} start", sid)
        starts.append(start)
        ends.append(start + entry[1])
        header += (bar_id, entry[0])
    # Bars are contiguous from 0: a note belongs to the last bar starting at or before it.
    bar_of = np.searchsorted(np.array(starts, dtype=np.int64), onset, side="right") - 1
    outside = (bar_of < 0) | (onset >= (ends[-1] if ends else 0))
    if outside.any():
        raise TokenizeError(f"{sid}: {int(outside.sum())} notes start after the last bar")
    new_tick = np.ones(len(onset), dtype=bool)
    new_tick[1:] = onset[1:] != onset[:-1]
    # Each event is [Pos_<k>] Pitch_<p> Dur_<d>; each bar's two header tokens come first.
    sizes = 2 + new_tick.astype(np.int64)
    prefix = [vocab.composer_id(composer), vocab.tempo_id(score.tempo), vocab.index["BOS"]]
    before = np.concatenate(([0], np.cumsum(sizes)))  # event tokens before each event
    bar_first = np.searchsorted(bar_of, np.arange(len(starts)), side="left")
    bar_at = len(prefix) + 2 * np.arange(len(starts)) + before[bar_first]
    event_at = len(prefix) + 2 * (bar_of + 1) + before[:-1]
    ids = np.empty(len(prefix) + len(header) + int(before[-1]) + 1, dtype=np.int64)
    ids[: len(prefix)] = prefix
    header_ids = np.array(header, dtype=np.int64).reshape(-1, 2)
    ids[bar_at] = header_ids[:, 0] if len(header_ids) else []
    ids[bar_at + 1] = header_ids[:, 1] if len(header_ids) else []
    position = np.array(starts, dtype=np.int64)[bar_of] if len(starts) else onset
    ids[event_at[new_tick]] = vocab.pos_base + (onset - position)[new_tick]
    pitch_at = event_at + new_tick
    ids[pitch_at] = vocab.pitch_base - vocab.config.pitch_min + pitch
    ids[pitch_at + 1] = vocab.dur_base - 1 + duration
    ids[-1] = vocab.index["EOS"]
    return Encoding(ids.tolist(), counts)


def _grid_columns(
    table: NoteTable, vocab: Vocab, sid: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Onsets and durations in grid ticks, and pitches; TokenizeError naming the first note (in
    order) that is off the grid or outside the vocabulary's pitches."""
    res, pitch_min, pitch_max = vocab.resolution, vocab.config.pitch_min, vocab.config.pitch_max
    onset, pitch, duration, _, _ = table.columns()
    on_grid = table.resolution == res and onset.dtype == duration.dtype == np.int64
    if on_grid and (not len(pitch) or (pitch_min <= pitch.min() and pitch.max() <= pitch_max)):
        return onset, pitch, duration  # a quantised score: nothing to convert or check
    scale = math.lcm(res, table.resolution)
    up, down = scale // table.resolution, scale // res  # grid tick = `down` ticks at `scale`
    bound = up * (magnitude(onset) + magnitude(duration) + 1)
    onset, duration = int_array(onset, bound) * up, int_array(duration, bound) * up
    bad = (pitch < pitch_min) | (pitch > pitch_max) | (onset % down != 0) | (duration % down != 0)
    if bad.any():
        i = int(np.argmax(bad))
        if not pitch_min <= pitch[i] <= pitch_max:
            raise TokenizeError(
                f"{sid}: pitch {pitch[i]} is outside the vocabulary's {pitch_min}-{pitch_max}"
            )
        what, value = ("onset", onset[i]) if onset[i] % down else ("duration", duration[i])
        to_ticks(Fraction(int(value), scale), res, what, sid)  # raises, naming the value
    return (onset // down).astype(np.int64), pitch, (duration // down).astype(np.int64)
