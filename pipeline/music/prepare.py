"""The one-score preparation chain every consumer shares: meter normalisation, then quantisation.

The API, the CLI (`gnm tokenize`, `gnm generate --prompt`), the demo, the crosscheck and the
round-trip tests prepare a score exactly as the meter and quantize stages do, through this.
"""

from __future__ import annotations

from pipeline.music.meter import MeterConfig, normalize_meters
from pipeline.music.quantize import QuantizeConfig, QuantizeStats, quantize
from pipeline.score import Score


def prepare(
    score: Score, meter_cfg: MeterConfig | None = None, resolution: int = 12
) -> tuple[Score, QuantizeStats]:
    """Meter-normalise then quantise (MeterError when a meter has no rule)."""
    normalised = normalize_meters(score, meter_cfg)
    return quantize(normalised, QuantizeConfig(resolution))
