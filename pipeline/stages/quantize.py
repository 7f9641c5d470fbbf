"""The quantize stage: snaps every score to the grid and adds the per-piece error columns.

The transform is pure and lives in `pipeline.music.quantize`; this module is the DVC stage
around it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.music.quantize import QuantizeConfig, quantize
from pipeline.score import Score
from pipeline.stages.base import ItemStage, Result, Stage, Tally, stage_input

# Columns the stage adds to the pieces rows it passes on (errors in grid ticks).
COLUMNS = [
    pa.field("notes_moved", pa.int32()),
    pa.field("onsets_moved", pa.int32()),
    pa.field("durations_moved", pa.int32()),
    pa.field("onset_error_mean_ticks", pa.float32()),
    pa.field("onset_error_max_ticks", pa.float32()),
    pa.field("duration_error_mean_ticks", pa.float32()),
    pa.field("duration_error_max_ticks", pa.float32()),
    pa.field("moved_tuplet", pa.int32()),
    pa.field("moved_finer_value", pa.int32()),
    pa.field("grace_dropped", pa.int32()),  # dropped by the reader; reported with the grid loss
]


class QuantizeStage(ItemStage):
    """Snap every normalised score to the grid; record per-piece error and its causes."""

    writes = "scores"

    def __init__(self, configs: Mapping[str, Any], inputs: Mapping[str, Path]) -> None:
        self.cfg: QuantizeConfig = configs["quantize"]

    def transform(self, row: dict[str, Any], score: Score) -> Result:
        """The quantised score; its row gains the error columns."""
        quantized, stats = quantize(score, self.cfg)
        report = stats.as_report()
        extra = {f.name: report.get(f.name) for f in COLUMNS}
        extra["grace_dropped"] = int(score.report.get("grace_dropped", 0))
        return {**row, **extra}, quantized

    def count(self, result: Result, counts: Counter[str]) -> None:
        """Notes in and notes moved, for the share moved."""
        if isinstance(result, tuple):
            counts["notes_moved"] += result[0]["notes_moved"]
            counts["notes"] += len(result[1].notes)

    def report(self, tally: Tally, out_dir: Path) -> tuple[dict[str, Any], list[str], list[str]]:
        """Scores, notes, notes moved and their share at the grid's resolution."""
        moved, notes = tally.counts["notes_moved"], tally.counts["notes"]
        share = moved / notes if notes else 0.0
        info = {"scores": tally.written, "notes": notes, "notes_moved": moved,
                "share_moved": share, "resolution": self.cfg.resolution}  # fmt: skip
        line = (
            f"quantize: {tally.written} scores, {notes:,} notes, {moved:,} moved "
            f"({100 * share:.2f}%) at {self.cfg.resolution} per quarter; wrote {out_dir}"
        )
        return info, [line], []


SPEC = Stage(
    "quantize",
    sections={"quantize": QuantizeConfig},
    inputs=(stage_input("meter"),),
    columns=tuple(COLUMNS),
    decides=True,  # rejects nothing, but writes its (empty) decisions like every score stage
    item=QuantizeStage,
)
