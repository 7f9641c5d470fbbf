"""One score to tokens: the shared preparation (`pipeline.music.prepare`), then the encoder.

`tokenize_score`'s report merges the counts of every step (reader, meter, quantise, encode) so
that a user sees in one place what was changed or dropped. The tokenize stage, `gnm tokenize`,
the demo and the evaluation all tokenize a score through this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.music.meter import MeterConfig
from pipeline.music.prepare import prepare
from pipeline.music.quantize import QuantizeStats
from pipeline.score import Score
from pipeline.tokenizer import Tokenizer


@dataclass(frozen=True)
class TokenizedScore:
    """One tokenized score: the prepared score, its ids and the merged report."""

    score: Score
    ids: list[int]
    composer: str | None
    quantize_stats: QuantizeStats
    report: dict[str, float] = field(default_factory=dict)


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
