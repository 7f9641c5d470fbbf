"""The quantize stage: snaps every score to the grid and adds the per-piece error columns.

The transform is pure and lives in `pipeline.music.quantize`; this module is the DVC stage
around it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from pipeline.music.quantize import QuantizeConfig, quantize
from pipeline.score import Score

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


def run(
    items: Iterable[tuple[dict[str, Any], Score]], cfg: QuantizeConfig
) -> Iterator[tuple[dict[str, Any], Score]]:
    """Quantise each score; its row gains the per-piece error columns."""
    for row, score in items:
        quantized, stats = quantize(score, cfg)
        report = stats.as_report()
        extra = {f.name: report.get(f.name) for f in COLUMNS}
        extra["grace_dropped"] = int(score.report.get("grace_dropped", 0))
        yield {**row, **extra}, quantized
