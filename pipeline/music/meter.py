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
* an overfull bar is cut into full bars of its meter plus a remainder treated as above (without
  recursion: a bar of thousands of quarters, a file without bar lines, becomes that many bars).

A second kind of rule pairs bars: a meter half as long as a supported one (2/8, 3/16) maps to the
supported meter of twice its length (`2/8: {pair: 2/4}`). In each run of consecutive full bars in
that meter the bars are merged two by two from the run's start, dropping every second bar line
(counted as `bars_paired`); onsets never move. Every other bar in that meter (a pickup, an
incomplete bar, the odd last bar of a run) becomes a bar of the pair meter with its own, shorter
length (counted as `bars_unpaired`) and is handled by the rules above: a pickup is right-aligned,
an odd last bar is joined to its neighbour under `merge` (three 2/8 bars -> one 3/4 bar), padded
under `pad`, refused under `error`.

A meter with no rule raises `MeterError` naming it (`meter:<n/d>`): nothing is forced into 4/4.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Any, Literal

import numpy as np

from pipeline.config_section import parsed_by, set_by
from pipeline.errors import MeterError
from pipeline.music.meters import SUPPORTED_METERS
from pipeline.notes import int_array, magnitude
from pipeline.score import Bar, Meter, NoteTable, Score, bars_from_meters

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

# Meters shorter than every supported one, whose bars are merged two by two into the supported
# meter of twice their length (Chopin's Prelude op. 28 no. 1 is written in 2/8).
DEFAULT_PAIRS: Mapping[str, str] = {"2/8": "2/4", "3/16": "3/8"}

IncompletePolicy = Literal["merge", "pad", "error"]


def _rule_table(raw: object) -> dict[str, Any]:
    """The `rules` and `pairs` fields of params.yaml's one `rules` table, which holds both
    decompositions (`5/4: [2/4, 3/4]`) and pairs (`2/8: {pair: 2/4}`) and replaces the whole
    default table when given; ValueError naming the form for anything else."""
    usage = "rules must map a meter to a list of meters (5/4: [2/4, 3/4]) or to a pair (2/8: {pair: 2/4})"
    if not isinstance(raw, Mapping):
        raise ValueError(usage)
    rules: dict[str, tuple[str, ...]] = {}
    pairs: dict[str, str] = {}
    for source, target in raw.items():
        if isinstance(target, list | tuple):
            rules[str(source)] = tuple(str(p) for p in target)
        elif isinstance(target, Mapping) and set(target) == {"pair"}:
            pairs[str(source)] = str(target["pair"])
        else:
            raise ValueError(f"{usage}; {source}: {target!r} is neither")
    return {"rules": rules, "pairs": pairs}


@dataclass(frozen=True)
class MeterConfig:
    """Parameters of meter normalisation (params.yaml section `meter`).

    `rules` decompose a bar into supported meters; `pairs` merge two bars of a meter into one of
    the supported meter twice as long. params.yaml writes both in one table, `rules`.
    """

    supported: tuple[str, ...] = SUPPORTED_METERS
    rules: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_RULES), metadata=parsed_by(_rule_table)
    )
    pairs: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_PAIRS), metadata=set_by("rules")
    )
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
        for source, pair in self.pairs.items():
            if pair not in self.supported:
                raise ValueError(f"meter pair rule {source} -> {pair} uses an unsupported meter")
            if Meter.parse(pair).length != 2 * Meter.parse(source).length:
                raise ValueError(
                    f"meter pair rule {source} -> {pair}: {pair} is not twice {source}"
                )
            if source in self.supported or source in self.rules:
                raise ValueError(
                    f"meter {source} is supported or has a rule already; it cannot pair"
                )
        if self.incomplete_bars not in ("merge", "pad", "error"):
            raise ValueError(
                f"incomplete_bars must be 'merge', 'pad' or 'error', not {self.incomplete_bars!r}"
            )

    def stands_alone(self, meter: Meter) -> bool:
        """True when one bar of `meter` has supported meters of its own (supported or ruled)."""
        return meter in self._decompositions

    def decompose(self, meter: Meter) -> tuple[Meter, ...]:
        """The supported meters a full bar of `meter` becomes; MeterError when there is no rule."""
        parts = self._decompositions.get(meter)
        if parts is None:
            raise MeterError(str(meter))
        return parts

    @cached_property
    def _decompositions(self) -> dict[Meter, tuple[Meter, ...]]:
        """Every supported or ruled meter and its decomposition, asked once per bar."""
        table: dict[Meter, tuple[Meter, ...]] = {
            Meter.parse(m): (Meter.parse(m),) for m in self.supported
        }
        for source, parts in self.rules.items():
            table.setdefault(Meter.parse(source), tuple(Meter.parse(p) for p in parts))
        return table

    @cached_property
    def paired(self) -> dict[Meter, Meter]:
        """Each paired meter and the supported meter two of its bars become."""
        return {Meter.parse(source): Meter.parse(pair) for source, pair in self.pairs.items()}

    @cached_property
    def longest(self) -> Fraction:
        """The longest bar `express` can return, in quarters."""
        return max(Meter.parse(m).length for m in (*self.supported, *self.rules))

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


@dataclass(frozen=True)
class BarPlan:
    """What meter normalisation does to a score's bars: the supported meters of the new bars, the
    shift (quarters) applied from each original bar's start on, the pickup shift and the counts."""

    meters: tuple[Meter, ...]
    shifts: tuple[tuple[Fraction, Fraction], ...]  # (original bar start, shift from there on)
    pickup_shift: Fraction
    counts: Mapping[str, float]


def plan_bars(bars: Sequence[Bar], cfg: MeterConfig | None = None) -> BarPlan:
    """The normalisation of `bars` (MeterError for a meter without a rule); notes not needed."""
    cfg = cfg or MeterConfig()
    if all(_full(b) and cfg.stands_alone(b.meter) for b in bars):
        # Most scores: every rule below leaves full bars of ruled meters as they are, so the
        # plan only decomposes them (no shift, nothing counted).
        plain = tuple(m for b in bars for m in cfg.decompose(b.meter))
        return BarPlan(plain, (), Fraction(0), {})
    counts: defaultdict[str, float] = defaultdict(float)
    out_meters: list[Meter] = []
    shifts: list[tuple[Fraction, Fraction]] = []
    shift = Fraction(0)
    pickup_shift = Fraction(0)
    bars = list(bars)
    if cfg.reinterpret_short_unruled:
        bars = _reinterpret_short_unruled(bars, cfg, counts)
    bars = _merge_split_bars(bars, counts)
    if cfg.pairs:
        bars = _pair_bars(bars, cfg, counts)
    if cfg.incomplete_bars == "merge":
        bars = _merge_short_bars(bars, cfg, counts)
    for i, bar in enumerate(bars):
        parts = cfg.decompose(bar.meter)  # raises MeterError for a meter without a rule
        shifts.append((bar.start, shift))
        if _full(bar):
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
    return BarPlan(tuple(out_meters), tuple(shifts), pickup_shift, dict(counts))


def _full(bar: Bar) -> bool:
    """`bar.complete` in integers (Fraction's comparison is slow, and asked of every bar)."""
    length, meter = bar.length, bar.meter
    return length.numerator * meter.denominator == 4 * meter.numerator * length.denominator


def _short(bar: Bar) -> bool:
    """`bar.length < bar.meter.length` in integers (denominators are positive)."""
    length, meter = bar.length, bar.meter
    return length.numerator * meter.denominator < 4 * meter.numerator * length.denominator


def normalize_meters(score: Score, cfg: MeterConfig | None = None) -> Score:
    """Return `score` with every bar a full bar of a supported meter (see the module docstring)."""
    plan = plan_bars(score.bars, cfg)
    shifts = plan.shifts
    tempos = tuple(t._replace(onset=t.onset + _shift_at(shifts, t.onset)) for t in score.tempos)
    return (
        score.replace(
            notes=_shift_notes(score.table, shifts),
            bars=bars_from_meters(plan.meters),
            tempos=tempos,
            pickup_shift=score.pickup_shift + plan.pickup_shift,
        )
        .with_counts(plan.counts)
        .validate()
    )


def _ruled(cfg: MeterConfig, meter: Meter) -> bool:
    return cfg.stands_alone(meter) or str(meter) in cfg.pairs


def _has_partner(bars: Sequence[Bar], i: int, cfg: MeterConfig) -> bool:
    """True when bar `i` is in a paired meter and a bar beside it is in the same meter."""
    meter = bars[i].meter
    if str(meter) not in cfg.pairs:
        return False
    return (i > 0 and bars[i - 1].meter == meter) or (
        i + 1 < len(bars) and bars[i + 1].meter == meter
    )


def _reinterpret_short_unruled(
    bars: list[Bar], cfg: MeterConfig, counts: defaultdict[str, float]
) -> list[Bar]:
    """A bar in a meter without a rule that is shorter than its neighbour's ruled meter is an
    incomplete bar of that meter (music21's ABC reader writes a line-start fragment of a 2/4 tune
    as a bar of 1/4 or 1/8); the first such bar becomes a pickup. A piece in such a meter
    throughout has no ruled neighbour and still raises MeterError. A bar in a paired meter with
    no bar of its meter beside it has nothing to pair with and is read the same way (a 3/16
    fragment of a 4/4 reel)."""
    out = list(bars)
    for i, bar in enumerate(bars):
        if cfg.stands_alone(bar.meter) or _has_partner(bars, i, cfg):
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
            and _short(prev)
            and bar.meter == prev.meter
            and prev.length + bar.length == bar.meter.length
        ):
            out[-1] = Bar(prev.start, bar.meter.length, bar.meter)
            counts["split_bars_merged"] += 1
        else:
            out.append(bar)
    return out


def _pair_bars(bars: Sequence[Bar], cfg: MeterConfig, counts: defaultdict[str, float]) -> list[Bar]:
    """Merge two consecutive full bars of a paired meter into one full bar of its pair meter,
    left to right; every other bar of a paired meter becomes a shorter bar of the pair meter."""
    out: list[Bar] = []
    i = 0
    while i < len(bars):
        bar = bars[i]
        meter = cfg.paired.get(bar.meter)
        if meter is None:
            out.append(bar)
            i += 1
            continue
        partner = bars[i + 1] if i + 1 < len(bars) else None
        if _full(bar) and partner is not None and partner.meter == bar.meter and _full(partner):
            out.append(Bar(bar.start, meter.length, meter))
            counts["bars_paired"] += 1
            i += 2
        else:
            out.append(Bar(bar.start, bar.length, meter, pickup=bar.pickup))
            counts["bars_unpaired"] += 1
            i += 1
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
        short = not bar.pickup and _short(bar)
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
    """Meters for a bar whose length differs from its meter, and the padding added at its end.

    An overfull bar loses one full bar of its meter at a time (each counted in
    `overfull_bars_split`) until the rest has a meter or is no longer overfull; no meter is
    longer than the longest rule, so the cuts above that length are made at once.
    """
    step = bar.meter.length
    cuts = max(0, math.ceil((bar.length - cfg.longest) / step))
    length = bar.length - cuts * step
    exact = cfg.express(length, bar.meter)
    while exact is None and length > step:
        cuts += 1
        length -= step
        exact = cfg.express(length, bar.meter)
    meters = list(parts) * cuts
    if cuts:
        counts["overfull_bars_split"] += cuts
    if exact is not None:
        kind = "incomplete" if length < step else "overfull"
        counts[f"{kind}_bars_reexpressed"] += 1
        return [*meters, *exact], Fraction(0)
    if cfg.incomplete_bars == "error":
        raise MeterError(
            str(bar.meter),
            f"bar at quarter {bar.end - length} is {length} quarters long, which no supported meter expresses",
        )
    counts["incomplete_bars_padded"] += 1
    padding = step - length
    counts["padding_quarters"] += float(padding)
    return [*meters, *parts], padding


def _shortest_tail(parts: Sequence[Meter], length: Fraction) -> tuple[Meter, ...]:
    """The shortest suffix of `parts` at least `length` quarters long (a pickup's home)."""
    total = Fraction(0)
    for k in range(len(parts) - 1, -1, -1):
        total += parts[k].length
        if total >= length:
            return tuple(parts[k:])
    return tuple(parts)


def _shift_notes(table: NoteTable, shifts: Sequence[tuple[Fraction, Fraction]]) -> NoteTable:
    """Move each note by the shift in force at its original onset (at a resolution that holds
    the shifts exactly)."""
    if not len(table) or not any(s for _, s in shifts):
        return table
    resolution = math.lcm(table.resolution, *(x.denominator for pair in shifts for x in pair))
    table = table.at(resolution)
    starts = [int(s * resolution) for s, _ in shifts]
    deltas = [int(d * resolution) for _, d in shifts]
    bound = max(magnitude(table.onset), *map(abs, starts)) + max(map(abs, deltas)) + 1
    onsets = int_array(table.onset, bound)
    # Starts ascend: the shift in force is that of the last bar starting at or before the onset.
    at = np.searchsorted(int_array(starts, bound), onsets, side="right") - 1
    delta = np.where(at >= 0, int_array(deltas, bound)[np.maximum(at, 0)], 0)
    return table.with_columns(onset=onsets + delta)


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
