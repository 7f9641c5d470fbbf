"""Encoding a quantised, meter-normalised score into Extended REMI token ids.

The score must already be on the vocabulary's grid with every bar a full bar of a supported
meter (run `normalize_meters` and `quantize` first); anything else is a TokenizeError that says
which stage is missing. Parts are merged into one stream: two parts sounding the same pitch at the
same tick for the same duration are one event (counted as `unison_merged`); durations longer than
the longest Dur token are clipped (counted as `durations_clipped`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

from pipeline.errors import TokenizeError
from pipeline.score import Score
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
    """Encode `score` with `Composer_<composer>` (None -> `Composer_None`) and its tempo bin."""
    res = vocab.resolution
    sid = score.meta.id or "<score>"
    pitch_min, pitch_max = vocab.config.pitch_min, vocab.config.pitch_max
    max_dur = vocab.max_duration
    counts: Counter[str] = Counter()
    events: set[tuple[int, int, int]] = set()
    for note in score.notes:
        if not pitch_min <= note.pitch <= pitch_max:
            raise TokenizeError(
                f"{sid}: pitch {note.pitch} is outside the vocabulary's {pitch_min}-{pitch_max}"
            )
        tick = to_ticks(note.onset, res, "onset", sid)
        dur = to_ticks(note.duration, res, "duration", sid)
        if dur > max_dur:
            dur = max_dur
            counts["durations_clipped"] += 1
        event = (tick, -note.pitch, dur)
        if event in events:
            counts["unison_merged"] += 1
        events.add(event)
    ordered = sorted(events)

    ts_ids = {m: vocab.ts_base + i for i, m in enumerate(vocab.meters)}
    pos_base, pitch_base, dur_base = (
        vocab.pos_base,
        vocab.pitch_base - pitch_min,
        vocab.dur_base - 1,
    )
    bar_id = vocab.index["Bar"]
    ids = [vocab.composer_id(composer), vocab.tempo_id(score.tempo), vocab.index["BOS"]]
    i, n = 0, len(ordered)
    for b, bar in enumerate(score.bars):
        ts = ts_ids.get(bar.meter)
        if ts is None or bar.length != bar.meter.length:
            raise TokenizeError(
                f"{sid}: bar {b} is {bar.length} quarters of {bar.meter}, not a full bar of a "
                "supported meter (normalise meters first)"
            )
        start = to_ticks(bar.start, res, f"bar {b} start", sid)
        end = start + vocab.positions(bar.meter)
        ids.append(bar_id)
        ids.append(ts)
        last_tick = -1
        while i < n and ordered[i][0] < end:
            tick, neg_pitch, dur = ordered[i]
            if tick != last_tick:
                ids.append(pos_base + tick - start)
                last_tick = tick
            ids.append(pitch_base - neg_pitch)
            ids.append(dur_base + dur)
            i += 1
    if i < n:
        raise TokenizeError(f"{sid}: {n - i} notes start after the last bar")
    ids.append(vocab.index["EOS"])
    return Encoding(ids, dict(counts))
