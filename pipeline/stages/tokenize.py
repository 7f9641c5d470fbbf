"""The tokenize stage: canonical score -> meter-normalised -> quantised -> Extended REMI ids.

`prepare` is the chain every consumer shares (the CLI, the demo, the round-trip tests); `run`
is the stage function over many scores. The returned report merges the counts of every step
(reader, meter, quantise, encode) so that a user sees in one place what was changed or dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pipeline.score import Score
from pipeline.stages.meter import MeterConfig, normalize_meters
from pipeline.stages.quantize import QuantizeConfig, QuantizeStats, quantize
from pipeline.tokenizer import Tokenizer


@dataclass(frozen=True)
class TokenizedScore:
    """One tokenized score: the prepared score, its ids and the merged report."""

    score: Score
    ids: list[int]
    composer: str | None
    quantize_stats: QuantizeStats
    report: dict[str, float] = field(default_factory=dict)


def prepare(
    score: Score, meter_cfg: MeterConfig | None = None, resolution: int = 12
) -> tuple[Score, QuantizeStats]:
    """Meter-normalise then quantise (MeterError when a meter has no rule)."""
    normalised = normalize_meters(score, meter_cfg)
    return quantize(normalised, QuantizeConfig(resolution))


def tokenize_score(
    score: Score,
    tokenizer: Tokenizer,
    composer: str | None = None,
    meter_cfg: MeterConfig | None = None,
) -> TokenizedScore:
    """Prepare and encode one score."""
    prepared, stats = prepare(score, meter_cfg, tokenizer.vocab.resolution)
    encoding = tokenizer.encode_with_report(prepared, composer)
    report = dict(prepared.report)
    for key, value in encoding.report.items():
        report[key] = report.get(key, 0) + value
    return TokenizedScore(prepared, encoding.ids, composer, stats, report)


def run(
    scores: Iterable[Score],
    tokenizer: Tokenizer,
    composer: str | None = None,
    meter_cfg: MeterConfig | None = None,
) -> Iterator[TokenizedScore]:
    """Tokenize many scores lazily, in order."""
    for score in scores:
        yield tokenize_score(score, tokenizer, composer, meter_cfg)
