"""What a grid resolution costs: the share of note onsets that are not on a candidate grid.

Measured on the scores as read (onsets in exact quarter notes from the start of the first bar),
per corpus and composer, for several resolutions at once, without building shards. A note is off
a grid of `r` ticks per quarter when `onset * r` is not an integer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.score import Score


@dataclass
class GridTally:
    """Notes seen and notes whose onset is off each grid."""

    notes: int = 0
    off: dict[int, int] = field(default_factory=dict)

    def add(self, score: Score, resolutions: Sequence[int]) -> None:
        """Count the notes of one score."""
        self.notes += len(score.notes)
        for res in resolutions:
            self.off[res] = self.off.get(res, 0) + sum(
                res % n.onset.denominator != 0 for n in score.notes
            )

    def shares(self) -> dict[int, float]:
        """Share of notes off each grid (0 when there are no notes)."""
        return {
            res: (count / self.notes if self.notes else 0.0)
            for res, count in sorted(self.off.items())
        }


def grid_report(
    items: Iterable[tuple[Score, Mapping[str, Any]]], resolutions: Sequence[int]
) -> dict[str, dict[str, GridTally]]:
    """Tallies by corpus and by composer (`"corpus"` and `"composer"` keys), plus `"all"`."""
    out: dict[str, dict[str, GridTally]] = {
        "corpus": {},
        "composer": {},
        "all": {"all": GridTally()},
    }
    for score, row in items:
        for key, name in (("corpus", row["corpus"]), ("composer", row.get("composer") or "(none)")):
            out[key].setdefault(name, GridTally()).add(score, resolutions)
        out["all"]["all"].add(score, resolutions)
    return out
