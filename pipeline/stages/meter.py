"""The meter stage: folds pitches by verify's policy, then normalises every bar's meter.

The rules and the transform are pure and live in `pipeline.music.meter`; this module is the DVC
stage around them (its columns and its decisions).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from pipeline.errors import MeterError
from pipeline.ledger import Decision, quarantined
from pipeline.music.meter import MeterConfig, normalize_meters
from pipeline.music.pitch import fold_pitches
from pipeline.score import Score

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
