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

from pipeline.score import Note, Score

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
    res = cfg.resolution
    last_tick = snap(score.bars[-1].end, res) - 1 if score.bars else None
    counts: Counter[str] = Counter()
    onset_errors: list[float] = []
    duration_errors: list[float] = []
    events: list[tuple[int, int, int, int, int]] = []  # (start tick, pitch, ticks, velocity, part)
    # Integer arithmetic throughout: Fraction operations dominate the cost otherwise.
    for note in score.notes:
        on_n, on_d = note.onset.numerator, note.onset.denominator
        du_n, du_d = note.duration.numerator, note.duration.denominator
        end_n, end_d = on_n * du_d + du_n * on_d, on_d * du_d
        start = _snap(on_n, on_d, res)
        if last_tick is not None and start > last_tick:
            start = last_tick
            counts["onsets_clamped_to_last_bar"] += 1
        ticks = _snap(end_n, end_d, res) - start
        if ticks < 1:
            ticks = 1
            counts["zero_length_extended"] += 1
        onset_err = abs(start * on_d - on_n * res) / on_d
        duration_err = abs(ticks * du_d - du_n * res) / du_d
        onset_errors.append(onset_err)
        duration_errors.append(duration_err)
        if onset_err or duration_err:
            counts["moved"] += 1
            counts["onsets_moved"] += bool(onset_err)
            counts["durations_moved"] += bool(duration_err)
            culprit = (on_n, on_d) if onset_err else (end_n, end_d)
            counts["moved_" + _reason(*culprit, res)] += 1
        events.append((start, note.pitch, ticks, note.velocity, note.part))
    events.sort()
    quarters: dict[int, Fraction] = {}
    notes = []
    for start, pitch, ticks, velocity, part in events:
        onset = quarters.get(start) or quarters.setdefault(start, Fraction(start, res))
        duration = quarters.get(ticks) or quarters.setdefault(ticks, Fraction(ticks, res))
        notes.append(Note(onset, pitch, duration, velocity, part))
    n = len(notes)
    stats = QuantizeStats(
        notes=n,
        notes_moved=counts["moved"],
        onsets_moved=counts["onsets_moved"],
        durations_moved=counts["durations_moved"],
        onset_error_mean=sum(onset_errors) / n if n else 0.0,
        onset_error_max=max(onset_errors, default=0.0),
        duration_error_mean=sum(duration_errors) / n if n else 0.0,
        duration_error_max=max(duration_errors, default=0.0),
        moved_tuplet=counts["moved_tuplet"],
        moved_finer_value=counts["moved_finer_value"],
        zero_length_extended=counts["zero_length_extended"],
    )
    report = {k: v for k, v in stats.as_report().items() if v}
    if counts["onsets_clamped_to_last_bar"]:
        report["onsets_clamped_to_last_bar"] = counts["onsets_clamped_to_last_bar"]
    quantized = dataclasses.replace(score, notes=tuple(notes)).with_counts(report)
    return quantized.validate(), stats


# -- the DVC stage ---------------------------------------------------------------------------
STAGE = "quantize"
