"""Meter normalisation: every bar becomes one or more full bars of a supported meter.

The supported meters are 2/4, 3/4, 4/4, 3/8 and 6/8. A declared rule table (params.yaml,
section `meter`) maps every other meter onto a sequence of supported ones whose lengths add up
exactly (5/4 -> 2/4 + 3/4). Absolute onsets never change except where this module says so and
counts it:

* a pickup (a first bar shorter than its meter) is right-aligned: it fills the shortest tail of
  its meter's decomposition that holds it, and every note moves by `pickup_shift`;
* two consecutive incomplete bars of one meter that add up to a full bar (a bar split by a repeat
  sign or a section end) are merged back into that bar: onsets and metric positions both exact;
* any other incomplete bar (a short final bar, a lone short bar) is re-expressed as the supported
  meter (or rule) of exactly its length when there is one; otherwise the `incomplete_bars` policy
  applies: `merge` (default) joins it to the previous bar, or else to the next, when their total
  length has a meter (a one-quarter bar after a 2/4 bar becomes one 3/4 bar; counted as
  `short_bars_merged`), and pads where neither fits; `pad` fills it to a full bar of its meter with
  silence at its end and moves every later note by the padding (counted in `padding_quarters`);
  `error` raises MeterError;
* an overfull bar is cut into full bars of its meter plus a remainder treated as above.

A meter with no rule raises `MeterError` naming it (`meter:<n/d>`): nothing is forced into 4/4.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import pyarrow as pa

from pipeline.errors import MeterError
from pipeline.ledger import Decision, quarantined
from pipeline.score import Bar, Meter, Note, Score

SUPPORTED_METERS: tuple[str, ...] = ("2/4", "3/4", "4/4", "3/8", "6/8")

DEFAULT_RULES: Mapping[str, tuple[str, ...]] = {
    "2/2": ("4/4",),
    "4/2": ("4/4", "4/4"),
    "3/2": ("3/4", "3/4"),
    "6/4": ("3/4", "3/4"),
    "5/4": ("2/4", "3/4"),
    "7/4": ("4/4", "3/4"),
    "9/4": ("3/4", "3/4", "3/4"),
    "8/4": ("4/4", "4/4"),
    "2/1": ("4/4", "4/4"),
    "9/8": ("6/8", "3/8"),
    "12/8": ("6/8", "6/8"),
    "7/8": ("2/4", "3/8"),
    "4/8": ("2/4",),
    "8/8": ("4/4",),
    "6/16": ("3/8",),
    "12/16": ("6/8",),
    "24/16": ("6/8", "6/8"),
    # Long meters of older songs (the Essen collection's breve-based 4/1, 3/1, 6/2).
    "4/1": ("4/4", "4/4", "4/4", "4/4"),
    "3/1": ("4/4", "4/4", "4/4"),
    "6/2": ("3/4", "3/4", "3/4", "3/4"),
    "8/2": ("4/4", "4/4", "4/4", "4/4"),
    "12/4": ("3/4", "3/4", "3/4", "3/4"),
    "16/4": ("4/4", "4/4", "4/4", "4/4"),
    "10/4": ("2/4", "3/4", "2/4", "3/4"),
}

IncompletePolicy = Literal["merge", "pad", "error"]


@dataclass(frozen=True)
class MeterConfig:
    """Parameters of meter normalisation (params.yaml section `meter`)."""

    supported: tuple[str, ...] = SUPPORTED_METERS
    rules: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_RULES))
    incomplete_bars: IncompletePolicy = "merge"
    reinterpret_short_unruled: bool = True

    def __post_init__(self) -> None:
        for text in self.supported:
            Meter.parse(text)
        for source, parts in self.rules.items():
            total = sum((Meter.parse(p).length for p in parts), Fraction(0))
            if total != Meter.parse(source).length:
                raise ValueError(f"meter rule {source} -> {' + '.join(parts)} does not add up")
            unsupported = [p for p in parts if p not in self.supported]
            if unsupported:
                raise ValueError(f"meter rule {source} uses unsupported meters {unsupported}")
        if self.incomplete_bars not in ("merge", "pad", "error"):
            raise ValueError(
                f"incomplete_bars must be 'merge', 'pad' or 'error', not {self.incomplete_bars!r}"
            )

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> MeterConfig:
        """Build from a params.yaml section (`supported`, `rules`, `incomplete_bars`)."""
        unknown = set(params) - {
            "supported",
            "rules",
            "incomplete_bars",
            "reinterpret_short_unruled",
        }
        if unknown:
            raise ValueError(f"unknown meter parameters: {', '.join(sorted(unknown))}")
        rules_raw = params.get("rules", DEFAULT_RULES)
        supported_raw = params.get("supported", SUPPORTED_METERS)
        if not isinstance(rules_raw, Mapping) or not all(
            isinstance(v, list | tuple) for v in rules_raw.values()
        ):
            raise ValueError("rules must map a meter to a list of meters, e.g. 5/4: [2/4, 3/4]")
        if not isinstance(supported_raw, list | tuple):
            raise ValueError("supported must be a list of meters")
        rules = {str(k): tuple(str(p) for p in v) for k, v in rules_raw.items()}
        return cls(
            tuple(str(m) for m in supported_raw), rules, params.get("incomplete_bars", "merge")
        )

    def decompose(self, meter: Meter) -> tuple[Meter, ...]:
        """The supported meters a full bar of `meter` becomes; MeterError when there is no rule."""
        text = str(meter)
        if text in self.supported:
            return (meter,)
        parts = self.rules.get(text)
        if parts is None:
            raise MeterError(text)
        return tuple(Meter.parse(p) for p in parts)

    def express(self, length: Fraction, meter: Meter) -> tuple[Meter, ...] | None:
        """Supported meters adding up to exactly `length` quarters, preferring `meter`'s family."""
        for den in dict.fromkeys((meter.denominator, 4, 8, 16, 2)):
            num = length * den / 4
            if num.denominator != 1:
                continue
            candidate = f"{num.numerator}/{den}"
            if candidate in self.supported or candidate in self.rules:
                return self.decompose(Meter.parse(candidate))
        return None


def normalize_meters(score: Score, cfg: MeterConfig | None = None) -> Score:
    """Return `score` with every bar a full bar of a supported meter (see the module docstring)."""
    cfg = cfg or MeterConfig()
    counts: defaultdict[str, float] = defaultdict(float)
    out_meters: list[Meter] = []
    # (original bar start, shift applied to notes from there on)
    shifts: list[tuple[Fraction, Fraction]] = []
    shift = Fraction(0)
    pickup_shift = Fraction(0)
    bars = list(score.bars)
    if cfg.reinterpret_short_unruled:
        bars = _reinterpret_short_unruled(bars, cfg, counts)
    bars = _merge_split_bars(bars, counts)
    if cfg.incomplete_bars == "merge":
        bars = _merge_short_bars(bars, cfg, counts)
    for i, bar in enumerate(bars):
        parts = cfg.decompose(bar.meter)  # raises MeterError for a meter without a rule
        shifts.append((bar.start, shift))
        if bar.complete:
            out_meters.extend(parts)
        elif i == 0 and bar.pickup:
            tail = _shortest_tail(parts, bar.length)
            pickup_shift = sum((m.length for m in tail), Fraction(0)) - bar.length
            shift += pickup_shift
            shifts[-1] = (bar.start, shift)
            out_meters.extend(tail)
            counts["pickup_right_aligned"] += 1
        else:
            meters, padding = _irregular_bar(bar, parts, cfg, counts)
            shift += padding
            out_meters.extend(meters)
    notes = tuple(_shift_notes(score.notes, shifts))
    new_bars = []
    start = Fraction(0)
    for meter in out_meters:
        new_bars.append(Bar(start, meter.length, meter))
        start += meter.length
    tempos = tuple(t._replace(onset=t.onset + _shift_at(shifts, t.onset)) for t in score.tempos)
    return (
        score.replace(
            notes=notes,
            bars=tuple(new_bars),
            tempos=tempos,
            pickup_shift=score.pickup_shift + pickup_shift,
        )
        .with_counts(counts)
        .validate()
    )


def _ruled(cfg: MeterConfig, meter: Meter) -> bool:
    text = str(meter)
    return text in cfg.supported or text in cfg.rules


def _reinterpret_short_unruled(
    bars: list[Bar], cfg: MeterConfig, counts: defaultdict[str, float]
) -> list[Bar]:
    """A bar in a meter without a rule that is shorter than its neighbour's ruled meter is an
    incomplete bar of that meter (music21's ABC reader writes a line-start fragment of a 2/4 tune
    as a bar of 1/4 or 1/8); the first such bar becomes a pickup. A piece in such a meter
    throughout has no ruled neighbour and still raises MeterError."""
    out = list(bars)
    for i, bar in enumerate(bars):
        if _ruled(cfg, bar.meter):
            continue
        before = next((b.meter for b in reversed(bars[:i]) if _ruled(cfg, b.meter)), None)
        after = next((b.meter for b in bars[i + 1 :] if _ruled(cfg, b.meter)), None)
        home = before or after
        if home is not None and bar.length < home.length:
            out[i] = Bar(bar.start, bar.length, home, pickup=i == 0)
            counts["unruled_meter_reinterpreted"] += 1
    return out


def _merge_split_bars(bars: Sequence[Bar], counts: defaultdict[str, float]) -> list[Bar]:
    """Merge each pair of adjacent incomplete bars of one meter that together make a full bar."""
    out: list[Bar] = []
    for bar in bars:
        prev = out[-1] if out else None
        if (
            prev is not None
            and not prev.pickup
            and prev.length < prev.meter.length
            and bar.meter == prev.meter
            and prev.length + bar.length == bar.meter.length
        ):
            out[-1] = Bar(prev.start, bar.meter.length, bar.meter)
            counts["split_bars_merged"] += 1
        else:
            out.append(bar)
    return out


def _merge_short_bars(
    bars: list[Bar], cfg: MeterConfig, counts: defaultdict[str, float]
) -> list[Bar]:
    """Join each inexpressible short bar to its previous (else next) bar when the sum has a meter."""
    out: list[Bar] = []
    pending: Bar | None = None  # a short bar waiting to be joined to the next one
    for bar in bars:
        if pending is not None:
            total = pending.length + bar.length
            if cfg.express(total, bar.meter) is not None:
                bar = Bar(pending.start, total, bar.meter)
                counts["short_bars_merged"] += 1
            else:
                out.append(pending)
            pending = None
        short = not bar.pickup and bar.length < bar.meter.length
        if short and cfg.express(bar.length, bar.meter) is None:
            prev = out[-1] if out else None
            if (
                prev is not None
                and not prev.pickup
                and cfg.express(prev.length + bar.length, prev.meter)
            ):
                out[-1] = Bar(prev.start, prev.length + bar.length, prev.meter)
                counts["short_bars_merged"] += 1
            else:
                pending = bar
            continue
        out.append(bar)
    if pending is not None:
        out.append(pending)
    return out


def _irregular_bar(
    bar: Bar, parts: tuple[Meter, ...], cfg: MeterConfig, counts: defaultdict[str, float]
) -> tuple[list[Meter], Fraction]:
    """Meters for a bar whose length differs from its meter, and the padding added at its end."""
    exact = cfg.express(bar.length, bar.meter)
    if exact is not None:
        kind = "incomplete" if bar.length < bar.meter.length else "overfull"
        counts[f"{kind}_bars_reexpressed"] += 1
        return list(exact), Fraction(0)
    if bar.length > bar.meter.length:
        counts["overfull_bars_split"] += 1
        remainder = Bar(bar.start + bar.meter.length, bar.length - bar.meter.length, bar.meter)
        rest, padding = _irregular_bar(remainder, parts, cfg, counts)
        return [*parts, *rest], padding
    if cfg.incomplete_bars == "error":
        raise MeterError(
            str(bar.meter),
            f"bar at quarter {bar.start} is {bar.length} quarters long, which no supported meter expresses",
        )
    counts["incomplete_bars_padded"] += 1
    padding = bar.meter.length - bar.length
    counts["padding_quarters"] += float(padding)
    return list(parts), padding


def _shortest_tail(parts: Sequence[Meter], length: Fraction) -> tuple[Meter, ...]:
    """The shortest suffix of `parts` at least `length` quarters long (a pickup's home)."""
    total = Fraction(0)
    for k in range(len(parts) - 1, -1, -1):
        total += parts[k].length
        if total >= length:
            return tuple(parts[k:])
    return tuple(parts)


def _shift_notes(
    notes: Sequence[Note], shifts: Sequence[tuple[Fraction, Fraction]]
) -> Iterator[Note]:
    """Move each note by the shift in force at its original onset."""
    if not any(s for _, s in shifts):
        yield from notes
        return
    for note in notes:
        delta = _shift_at(shifts, note.onset)
        yield note._replace(onset=note.onset + delta) if delta else note


def _shift_at(shifts: Sequence[tuple[Fraction, Fraction]], onset: Fraction) -> Fraction:
    """The shift of the last bar starting at or before `onset` (shifts are sorted by start)."""
    lo, hi = 0, len(shifts)
    while lo < hi:
        mid = (lo + hi) // 2
        if shifts[mid][0] <= onset:
            lo = mid + 1
        else:
            hi = mid
    return shifts[lo - 1][1] if lo else Fraction(0)


# -- the DVC stage ---------------------------------------------------------------------------
STAGE = "meter"

# Columns the stage adds to the pieces rows it passes on.
COLUMNS = [
    pa.field("source_meters", pa.list_(pa.string())),  # meter of each bar as written
    pa.field("octave_folded", pa.int32()),  # notes moved into range by verify's `fold` policy
]


def run(
    items: Iterable[tuple[dict[str, Any], Score]],
    cfg: MeterConfig,
    fold_range: tuple[int, int] | None = None,
) -> Iterator[tuple[dict[str, Any], Score] | Decision]:
    """Normalise each accepted score; a meter without a rule yields a quarantine decision.

    `fold_range` applies verify's `pitch_policy: fold` here, the first stage that rewrites
    scores (verify only judges them).
    """
    from pipeline.stages.verify import fold_pitches

    for row, score in items:
        folded = 0
        if fold_range is not None:
            score, folded = fold_pitches(score, *fold_range)
        try:
            normalised = normalize_meters(score, cfg)
        except MeterError as exc:
            yield Decision.of(
                row,
                STAGE,
                quarantined(exc.reason),
                str(exc),
            )
            continue
        yield (
            {**row, "source_meters": [str(b.meter) for b in score.bars], "octave_folded": folded},
            normalised,
        )
