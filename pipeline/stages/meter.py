"""The meter stage: folds pitches by verify's policy, then normalises every bar's meter.

The rules and the transform are pure and live in `pipeline.music.meter`; this module is the DVC
stage around them (its contract: inputs, columns and decisions; see `stages.base`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.errors import MeterError
from pipeline.ledger import Decision, quarantined
from pipeline.music.meter import MeterConfig, normalize_meters
from pipeline.music.pitch import fold_pitches
from pipeline.score import Score
from pipeline.stages.base import ItemStage, Result, Stage, Tally, stage_input
from pipeline.stages.verify import VerifyConfig

STAGE = "meter"

# Columns the stage adds to the pieces rows it passes on.
COLUMNS = [
    pa.field("source_meters", pa.list_(pa.string())),  # meter of each bar as written
    pa.field("octave_folded", pa.int32()),  # notes moved into range by verify's `fold` policy
]


class MeterStage(ItemStage):
    """Normalise the meters of every accepted, non-duplicate score (5/4 -> 2/4 + 3/4, ...).

    Pitches are folded first by verify's policy; a meter without a rule quarantines the piece
    with reason `meter:<n/d>`.
    """

    writes = "scores"

    def __init__(self, configs: Mapping[str, Any], inputs: Mapping[str, Path]) -> None:
        self.cfg: MeterConfig = configs["meter"]
        v: VerifyConfig = configs["verify"]
        # verify's `pitch_policy: fold` applies here, the first stage that rewrites scores
        # (verify only judges them).
        self.fold_range = (v.pitch_min, v.pitch_max) if v.pitch_policy == "fold" else None

    def transform(self, row: dict[str, Any], score: Score) -> Result:
        """The normalised score with its source meters, or a quarantine decision."""
        folded = 0
        if self.fold_range is not None:
            score, folded = fold_pitches(score, *self.fold_range)
        try:
            normalised = normalize_meters(score, self.cfg)
        except MeterError as exc:
            return Decision.of(row, STAGE, quarantined(exc.reason), str(exc))
        meters = [str(b.meter) for b in score.bars]
        return {**row, "source_meters": meters, "octave_folded": folded}, normalised

    def report(self, tally: Tally, out_dir: Path) -> tuple[dict[str, Any], list[str], list[str]]:
        """Scores normalised, items not accepted earlier, quarantines."""
        info = {"items": tally.items, "skipped": tally.skipped, "normalised": tally.written,
                "quarantined": len(tally.decisions)}  # fmt: skip
        line = (
            f"meter: {tally.written} scores normalised ({tally.skipped} not accepted earlier, "
            f"{len(tally.decisions)} quarantined); wrote {out_dir}"
        )
        return info, [line], []


SPEC = Stage(
    STAGE,
    sections={"meter": MeterConfig, "verify": VerifyConfig},
    inputs=(stage_input("ingest"),),  # the registry adds dedupe and verify: their rejections
    columns=tuple(COLUMNS),
    decides=True,
    item=MeterStage,
)
