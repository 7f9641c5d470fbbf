"""Quantisation: onsets and offsets snap to a grid of `resolution` ticks per quarter note.

The default grid is the paper's 12 ticks per quarter (48 positions in 4/4, 36 in 3/4 and 6/8,
24 in 2/4, 18 in 3/8). Onset and offset are rounded half up independently (so legato lines stay
contiguous) and the duration is their difference; a note that collapses to zero length keeps one
tick. Quantising an already quantised score changes nothing.

Every moved note is counted with its reason: `tuplet` when the exact onset (or duration) has a
prime factor other than 2 in its denominator that the grid cannot hold (e.g. quintuplets at 12),
`finer_value` when it is a power-of-two subdivision finer than the grid (32nd notes at 12).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from pipeline.notes import divide, int_array, magnitude
from pipeline.score import Score

DEFAULT_RESOLUTION = 12


@dataclass(frozen=True)
class QuantizeConfig:
    """Parameters of quantisation (params.yaml section `quantize`)."""

    resolution: int = DEFAULT_RESOLUTION

    def __post_init__(self) -> None:
        if not isinstance(self.resolution, int) or self.resolution < 1:
            raise ValueError(f"resolution must be a positive integer, not {self.resolution!r}")
        if self.resolution % 2:
            raise ValueError(
                f"resolution {self.resolution} cannot place 3/8 bars (1.5 quarters); use an even value"
            )


@dataclass(frozen=True)
class QuantizeStats:
    """Per-score quantisation error: counts of moved notes and errors in grid ticks."""

    notes: int
    notes_moved: int
    onsets_moved: int
    durations_moved: int
    onset_error_mean: float
    onset_error_max: float
    duration_error_mean: float
    duration_error_max: float
    moved_tuplet: int
    moved_finer_value: int
    zero_length_extended: int

    @property
    def share_moved(self) -> float:
        """Share of notes whose onset or duration changed (0 for an empty score)."""
        return self.notes_moved / self.notes if self.notes else 0.0

    def as_report(self) -> dict[str, float]:
        """Report keys merged into `Score.report` (errors in ticks)."""
        return {
            "notes_moved": self.notes_moved,
            "onsets_moved": self.onsets_moved,
            "durations_moved": self.durations_moved,
            "onset_error_mean_ticks": self.onset_error_mean,
            "onset_error_max_ticks": self.onset_error_max,
            "duration_error_mean_ticks": self.duration_error_mean,
            "duration_error_max_ticks": self.duration_error_max,
            "moved_tuplet": self.moved_tuplet,
            "moved_finer_value": self.moved_finer_value,
            "zero_length_extended": self.zero_length_extended,
        }


def snap(value: Fraction, resolution: int) -> int:
    """`value` (quarters) as the nearest grid tick, halves rounded up."""
    return _snap(value.numerator, value.denominator, resolution)


def _snap(num: int, den: int, resolution: int) -> int:
    # floor(num / den * resolution + 1/2) in integers.
    return (2 * num * resolution + den) // (2 * den)


def off_grid_reason(value: Fraction, resolution: int) -> str:
    """Why `value` is not on the grid: `tuplet` or `finer_value` (call only for off-grid values)."""
    return _reason(value.numerator, value.denominator, resolution)


def _reason(num: int, den: int, resolution: int) -> str:
    denominator = den // math.gcd(num * resolution, den)
    while denominator % 2 == 0:
        denominator //= 2
    return "tuplet" if denominator > 1 else "finer_value"


def quantize(score: Score, cfg: QuantizeConfig | None = None) -> tuple[Score, QuantizeStats]:
    """Snap every note to the grid; return the new score (report updated) and its error stats."""
    cfg = cfg or QuantizeConfig()
    grid = cfg.resolution
    table = score.table
    res = table.resolution
    last_tick = snap(score.bars[-1].end, grid) - 1 if score.bars else None
    counts: Counter[str] = Counter()
    # Every value below is an integer (ticks of the score's resolution times the grid's): exact.
    bound = 2 * grid * (magnitude(table.onset) + magnitude(table.duration) + 1) + 2 * res
    onset, duration = int_array(table.onset, bound), int_array(table.duration, bound)
    end = onset + duration
    start = (2 * onset * grid + res) // (2 * res)  # half up, as `snap`
    if last_tick is not None:
        clamped = start > last_tick
        counts["onsets_clamped_to_last_bar"] = int(clamped.sum())
        start = np.where(clamped, last_tick, start)
    ticks = (2 * end * grid + res) // (2 * res) - start
    short = ticks < 1
    counts["zero_length_extended"] = int(short.sum())
    ticks = np.where(short, 1, ticks)
    # Errors in grid ticks: |start - onset * grid / res|, one correctly rounded division each
    # (as Python's int / int), so the figures do not depend on how the fractions were written.
    onset_miss = abs(start * res - onset * grid)
    duration_miss = abs(ticks * res - duration * grid)
    onset_errors = divide(onset_miss, res)
    duration_errors = divide(duration_miss, res)
    moved = (onset_miss != 0) | (duration_miss != 0)
    culprit = np.where(onset_miss != 0, onset, end)[moved]  # ticks of the value that moved
    tuplet = int(_off_grid_tuplet(culprit, res, grid).sum())
    n = len(table)
    notes_moved = int(moved.sum())
    quantized = table.with_columns(onset=start, duration=ticks, resolution=grid).sorted()
    stats = QuantizeStats(
        notes=n,
        notes_moved=notes_moved,
        onsets_moved=int((onset_miss != 0).sum()),
        durations_moved=int((duration_miss != 0).sum()),
        # Summed left to right, as the built-in sum (numpy's pairwise sum rounds otherwise).
        onset_error_mean=_sum(onset_errors) / n if n else 0.0,
        onset_error_max=float(onset_errors.max()) if n else 0.0,
        duration_error_mean=_sum(duration_errors) / n if n else 0.0,
        duration_error_max=float(duration_errors.max()) if n else 0.0,
        moved_tuplet=tuplet,
        moved_finer_value=notes_moved - tuplet,
        zero_length_extended=counts["zero_length_extended"],
    )
    report = {k: v for k, v in stats.as_report().items() if v}
    if counts["onsets_clamped_to_last_bar"]:
        report["onsets_clamped_to_last_bar"] = counts["onsets_clamped_to_last_bar"]
    result = dataclasses.replace(score, notes=quantized).with_counts(report)
    return result.validate(), stats


def _sum(values: np.ndarray) -> float:
    """The built-in `sum` of float64 values (left to right)."""
    return float(np.cumsum(values)[-1]) if len(values) else 0.0


def _off_grid_tuplet(ticks: np.ndarray, res: int, grid: int) -> np.ndarray:
    """For values off the grid (`ticks` of `res` per quarter), whether the cause is a tuplet:
    the reduced denominator of `ticks * grid / res` has an odd factor (see `_reason`)."""
    if not len(ticks):
        return np.zeros(0, dtype=bool)
    denominator = res // np.gcd(ticks * grid, res)
    if denominator.dtype == object:
        return np.array([_reason(1, int(d), 1) == "tuplet" for d in denominator], dtype=bool)
    odd = denominator // (denominator & -denominator)  # strip the factors of two
    return odd > 1
