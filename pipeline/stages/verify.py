"""The verify stage: structural and label checks on every ingested score.

Each check returns None (passed) or a machine-readable reason; the first failing check
quarantines the item. Reasons: `truncated:<read>/<source>` (the reader's score has fewer bars
than the measures the source holds as written, counted without a parser: see
`readers.source_counts`), `notes_lost:<read>/<source>` (under `min_source_ratio` of the written
notes), `no_notes`, `too_short` (fewer bars than `min_bars`),
`pitch_range` (a pitch outside `pitch_min`-`pitch_max`, unless `pitch_policy: fold` declares that
such notes are moved by octaves into range), `non_positive_duration`, `tempo_out_of_range`,
`composer_mismatch:<name>` (the file's own composer field names another declared composer), and
`meter:<n/d>` (a meter with no normalisation rule).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.errors import MeterError
from pipeline.ledger import Decision, quarantined
from pipeline.music.meter import MeterConfig, plan_bars
from pipeline.score import Score
from pipeline.stages.base import Input, ItemStage, Result, Stage, Tally, stage_input

STAGE = "verify"


@dataclass(frozen=True)
class VerifyConfig:
    """Parameters of verify (params.yaml section `verify`)."""

    min_bars: int = 2
    pitch_min: int = 21
    pitch_max: int = 108
    pitch_policy: Literal["quarantine", "fold"] = "quarantine"
    tempo_min: float = 20.0
    tempo_max: float = 400.0
    # Against what the source writes (counted without a parser, grace notes and tied
    # continuations excluded as the readers merge or drop them): a reading with more than
    # `max_bars_lost` bars fewer is `truncated`; one with under `min_source_ratio` of the notes
    # is `notes_lost`. On the full profile the fast readers put 4 of 16,900 counted items under
    # 0.98 (ABC tunes with mail-mangled text); music21 put 138 there.
    max_bars_lost: int = 1
    min_source_ratio: float = 0.98

    def __post_init__(self) -> None:
        if not 0 <= self.pitch_min < self.pitch_max <= 127 or self.pitch_max - self.pitch_min < 11:
            raise ValueError("pitch range must lie in 0-127 and span at least an octave")
        if self.pitch_policy not in ("quarantine", "fold"):
            raise ValueError(
                f"pitch_policy must be 'quarantine' or 'fold', not {self.pitch_policy!r}"
            )
        if not 0 < self.tempo_min < self.tempo_max:
            raise ValueError("need 0 < tempo_min < tempo_max")
        if self.min_bars < 0:
            raise ValueError("min_bars must be >= 0")
        if self.max_bars_lost < 0 or not 0 <= self.min_source_ratio <= 1:
            raise ValueError("need max_bars_lost >= 0 and 0 <= min_source_ratio <= 1")


def _words(text: str) -> list[str]:
    """Lower-case ASCII words of a name: 'Frédéric Chopin' -> ['frederic', 'chopin']."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.findall(r"[a-z]+", plain)


def names_match(label: str, source: str) -> bool:
    """Whether a composer label (`Bach`, `CPEBach`, `ClaraSchumann`) names the person in `source`.

    The label's last CamelCase part (the surname) must be a word of `source`; each earlier part
    must be a word of it or the initial of one ('CPEBach' ~ 'Carl Philipp Emanuel Bach').
    """
    parts = [p.lower() for p in re.findall(r"[A-Z][a-z]*|[a-z]+", label)]
    words = _words(source)
    if not parts or parts[-1] not in words:
        return False
    given = words[: words.index(parts[-1])]
    return all(
        p in given or (len(p) == 1 and any(w.startswith(p) for w in given)) for p in parts[:-1]
    )


def composer_check(declared: str | None, source: str, known: Iterable[str]) -> str | None:
    """A reason when the file's composer field names a declared composer other than `declared`.

    A field naming nobody we know (an arranger, a lyricist) is not a mismatch.
    """
    if not declared or not source or names_match(declared, source):
        return None
    for other in sorted(known, key=len, reverse=True):
        if other != declared and names_match(other, source):
            return f"composer_mismatch:{other}"
    return None


def check(
    score: Score,
    row: Mapping[str, Any],
    cfg: VerifyConfig,
    meter_cfg: MeterConfig,
    known: Sequence[str],
) -> str | None:
    """The first failing check's reason, or None."""
    lost = truncation(score, cfg)
    if lost:
        return lost
    table = score.table
    if not len(table):
        return "no_notes"
    if len(score.bars) < cfg.min_bars:
        return "too_short"
    if cfg.pitch_policy == "quarantine" and (
        (table.pitch < cfg.pitch_min).any() or (table.pitch > cfg.pitch_max).any()
    ):
        return "pitch_range"
    if (table.duration <= 0).any():
        return "non_positive_duration"
    if any(not cfg.tempo_min <= t.bpm <= cfg.tempo_max for t in score.tempos):
        return "tempo_out_of_range"
    mismatch = composer_check(row.get("composer"), row.get("source_composer") or "", known)
    if mismatch:
        return mismatch
    try:
        plan_bars(score.bars, meter_cfg)  # the bars decide; the notes need not move to know
    except MeterError as exc:
        return exc.reason
    return None


def truncation(score: Score, cfg: VerifyConfig) -> str | None:
    """`truncated:<read>/<source>` when the score lacks bars its source holds as written, or
    `notes_lost:<read>/<source>` when it lacks notes; None when it holds what the source does."""
    measures = int(score.report.get("source_measures", 0))
    if measures and len(score.bars) < measures - cfg.max_bars_lost:
        return f"truncated:{len(score.bars)}/{measures}"
    notes = int(score.report.get("source_notes", 0))
    if notes and notes_accounted(score) < cfg.min_source_ratio * notes:
        return f"notes_lost:{len(score.notes)}/{notes}"
    return None  # within the slack, or nothing counted (an uncountable source)


# Notes a reader drops on purpose and counts: accounted for, not lost.
COUNTED_DROPS = ("zero_duration_dropped",)


def notes_accounted(score: Score) -> int:
    """The score's notes plus those its reader dropped and counted (zero-length MIDI notes)."""
    return len(score.notes) + sum(int(score.report.get(k, 0)) for k in COUNTED_DROPS)


class VerifyStage(ItemStage):
    """Check every ingested score (notes, length, pitch range, tempo, composer label, meters).

    Duplicates too (the checks do not depend on dedupe); the first failing check quarantines.
    """

    def __init__(self, configs: Mapping[str, Any], inputs: Mapping[str, Path]) -> None:
        from pipeline.corpora import known_composers, load_declarations

        self.cfg: VerifyConfig = configs["verify"]
        self.meter_cfg: MeterConfig = configs["meter"]
        self.known = known_composers(load_declarations(inputs["corpora"]))

    def transform(self, row: dict[str, Any], score: Score) -> Result:
        """None when every check passes, else a quarantine decision."""
        reason = check(score, row, self.cfg, self.meter_cfg, self.known)
        if reason is None:
            return None
        return Decision.of(row, STAGE, quarantined(reason), _detail(reason, score, row))

    def report(self, tally: Tally, out_dir: Path) -> tuple[dict[str, Any], list[str], list[str]]:
        """Items, quarantines and their reasons."""
        reasons = Counter(d.status.split(":", 1)[1] for d in tally.decisions)
        info: dict[str, Any] = {
            "items": tally.items,
            "quarantined": len(tally.decisions),
            "reasons": dict(sorted(reasons.items())),
            "out": str(out_dir),
        }
        lines = [
            f"verify: {tally.items} items, {len(tally.decisions)} quarantined; wrote {out_dir}"
        ]
        lines += [f"  quarantined:{reason}: {count}" for reason, count in info["reasons"].items()]
        return info, lines, []


def _detail(reason: str, score: Score, row: Mapping[str, Any]) -> str:
    if reason.startswith(("truncated:", "notes_lost:")):
        notes = int(score.report.get("source_notes", 0))
        measures = int(score.report.get("source_measures", 0))
        written = f"{measures} measures and {notes} notes" if measures else f"{notes} notes"
        return (
            f"read {len(score.bars)} bars and {len(score.notes)} notes; the source writes {written}"
        )
    if reason == "too_short":
        return f"{len(score.bars)} bars"
    if reason == "pitch_range":
        return f"pitches {score.table.pitch.min()}-{score.table.pitch.max()}"
    if reason == "tempo_out_of_range":
        return f"tempi {sorted({round(t.bpm, 1) for t in score.tempos})}"
    if reason.startswith("composer_mismatch"):
        return f"declared {row.get('composer')}, file says {row.get('source_composer')!r}"
    return ""


SPEC = Stage(
    STAGE,
    sections={"verify": VerifyConfig, "meter": MeterConfig},
    inputs=(
        stage_input("ingest"),
        Input("corpora", "corpora", "Folder of corpus declarations (*.yaml)."),
    ),
    decides=True,
    item=VerifyStage,
    skip_rejected=False,
)
