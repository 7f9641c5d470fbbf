"""The quality stage: quarantines quantised pieces that break declared thresholds.

Between quantize and tokenize; it judges and writes only its decisions (tokenize skips what it
rejects). Thresholds (params.yaml section `quality`; the defaults accept everything):
`max_moved_share` of the notes that quantisation moved (`quality:notes_moved`),
`max_empty_bar_share` of bars in which no note sounds (`quality:empty_bars`), and
`max_silence_quarters`, the longest stretch without a sounding note from the first bar's start to
the last bar's end (`quality:silence`). The first threshold broken decides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from pipeline.ledger import Decision, quarantined
from pipeline.score import Score
from pipeline.stages.base import ItemStage, Result, Stage, Tally, stage_input

STAGE = "quality"


@dataclass(frozen=True)
class QualityConfig:
    """Parameters of quality (params.yaml section `quality`); None switches a check off."""

    max_moved_share: float | None = 1.0  # of the notes, 0-1
    max_empty_bar_share: float | None = 1.0  # of the bars, 0-1
    max_silence_quarters: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_moved_share", "max_empty_bar_share"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"{name} is a share: give a number in 0-1, not {value}")
        if self.max_silence_quarters is not None and self.max_silence_quarters < 0:
            raise ValueError("max_silence_quarters must be >= 0")


def empty_bars(score: Score) -> int:
    """Bars in which no note sounds (a note sounds in [onset, onset + duration))."""
    spans = sorted((n.onset, n.onset + n.duration) for n in score.notes)
    empty, i, reach = 0, 0, Fraction(-1)  # reach: the latest end of the notes begun so far
    for bar in score.bars:
        while i < len(spans) and spans[i][0] < bar.end:
            reach = max(reach, spans[i][1])
            i += 1
        if reach <= bar.start:
            empty += 1
    return empty


def longest_silence(score: Score) -> Fraction:
    """The longest stretch in quarters, from the first bar's start to the last bar's end, in
    which no note sounds."""
    if not score.bars:
        return Fraction(0)
    cursor, longest = score.bars[0].start, Fraction(0)
    for onset, end in sorted((n.onset, n.onset + n.duration) for n in score.notes):
        longest = max(longest, onset - cursor)
        cursor = max(cursor, end)
    return max(longest, score.bars[-1].end - cursor)


def check(row: Mapping[str, Any], score: Score, cfg: QualityConfig) -> tuple[str, str] | None:
    """The first broken threshold as (reason, detail), or None."""
    notes, bars = len(score.notes), len(score.bars)
    moved = int(row.get("notes_moved") or 0)
    if cfg.max_moved_share is not None and notes and moved / notes > cfg.max_moved_share:
        return "notes_moved", f"{moved} of {notes} notes moved (limit {cfg.max_moved_share:.0%})"
    if cfg.max_empty_bar_share is not None and bars:
        empty = empty_bars(score)
        if empty / bars > cfg.max_empty_bar_share:
            return (
                "empty_bars",
                f"{empty} of {bars} bars empty (limit {cfg.max_empty_bar_share:.0%})",
            )
    if cfg.max_silence_quarters is not None:
        silence = longest_silence(score)
        if silence > cfg.max_silence_quarters:
            limit = cfg.max_silence_quarters
            return "silence", f"{float(silence):g} quarters without a note (limit {limit:g})"
    return None


class QualityStage(ItemStage):
    """Quarantine quantised pieces over the quality thresholds (params.yaml `quality`)."""

    def __init__(self, configs: Mapping[str, Any], inputs: Mapping[str, Path]) -> None:
        self.cfg: QualityConfig = configs[STAGE]

    def passes_everything(self) -> bool:
        """No threshold can be broken: shares of at least 1, no silence limit (the defaults)."""
        cfg = self.cfg
        return (
            (cfg.max_moved_share is None or cfg.max_moved_share >= 1)
            and (cfg.max_empty_bar_share is None or cfg.max_empty_bar_share >= 1)
            and cfg.max_silence_quarters is None
        )

    def transform(self, row: dict[str, Any], score: Score) -> Result:
        """None when the piece is within every threshold, else a quarantine decision."""
        broken = check(row, score, self.cfg)
        if broken is None:
            return None
        return Decision.of(row, STAGE, quarantined(f"{STAGE}:{broken[0]}"), broken[1])

    def report(self, tally: Tally, out_dir: Path) -> tuple[dict[str, Any], list[str], list[str]]:
        """Pieces judged, quarantines and their reasons."""
        reasons = dict(sorted(Counter(d.status.split(":", 1)[1] for d in tally.decisions).items()))
        info = {"pieces": tally.items, "quarantined": len(tally.decisions), "reasons": reasons,
                "out": str(out_dir)}  # fmt: skip
        lines = [
            f"quality: {tally.items} pieces, {len(tally.decisions)} quarantined; wrote {out_dir}"
        ]
        return info, lines + [f"  quarantined:{r}: {n}" for r, n in reasons.items()], []


SPEC = Stage(
    STAGE,
    sections={STAGE: QualityConfig},
    inputs=(stage_input("quantize"),),
    decides=True,
    item=QualityStage,
)
