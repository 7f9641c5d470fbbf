"""The quality stage: declared thresholds quarantine the right pieces, and the ledger adds up."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from pipeline.cli.stages import stage_configs
from pipeline.io.score_store import ScoreWriter
from pipeline.ledger import Decision, merge, summary, write_decisions
from pipeline.score import Meter, Note, Score, ScoreMeta, bars_from_meters
from pipeline.stages import BY_NAME
from pipeline.stages.base import pieces_schema, run_item_stage
from pipeline.stages.quality import (
    QualityConfig,
    QualityStage,
    check,
    empty_bars,
    longest_silence,
)

REPO = Path(__file__).resolve().parents[1]
WHOLE = Fraction(4)


def _score(name: str, notes: list[tuple[int, int]]) -> Score:
    """Four 4/4 bars; `notes` as (onset, duration) in quarters, all at middle C."""
    bars = bars_from_meters([Meter(4, 4)] * 4)
    played = tuple(Note(Fraction(on), 60, Fraction(d)) for on, d in notes)
    return Score(ScoreMeta(f"c/{name}"), played, bars).validate()


FULL = [(0, 4), (4, 4), (8, 4), (12, 4)]
PIECES = {  # name: (notes moved, notes, expected reason or None)
    "clean": (0, FULL, None),
    "empty": (0, [(0, 4), (12, 4)], "quality:empty_bars"),  # bars 1 and 2 silent
    "gap": (0, [(0, 4), (4, 1), (8, 4), (12, 4)], "quality:silence"),  # 3 quarters
    "moved": (3, FULL, "quality:notes_moved"),  # 3 of 4 notes moved
}
STRICT = QualityConfig(max_moved_share=0.5, max_empty_bar_share=0.25, max_silence_quarters=2.5)


def _row(name: str, moved: int) -> dict[str, object]:
    return {"id": f"c/{name}", "corpus": "c", "rel_path": name, "item": None, "notes_moved": moved}


def _quantized_store(folder: Path) -> Path:
    with ScoreWriter(folder, pieces_schema("quantize", BY_NAME)) as writer:
        for name, (moved, notes, _) in sorted(PIECES.items()):
            writer.write(_row(name, moved), _score(name, notes))
    write_decisions([], folder / "decisions.parquet")
    return folder


def _run(tmp_path: Path, cfg: QualityConfig) -> list[Decision]:
    store = _quantized_store(tmp_path / "quantize")
    stage = QualityStage({"quality": cfg}, {})
    tally = run_item_stage(
        BY_NAME["quality"], stage, {"quantize": store}, tmp_path / "quality", None
    )
    assert tally.items == len(PIECES)
    return tally.decisions


def test_thresholds_quarantine_the_pieces_past_them_with_named_reasons(tmp_path: Path) -> None:
    decisions = _run(tmp_path, STRICT)
    expected = {f"c/{n}": reason for n, (_, _, reason) in PIECES.items() if reason}
    assert {d.id: d.status.removeprefix("quarantined:") for d in decisions} == expected
    assert all(d.stage == "quality" and d.detail for d in decisions)


def test_the_ledger_counts_the_quality_quarantines_and_adds_up(tmp_path: Path) -> None:
    decisions = _run(tmp_path, STRICT)
    ingest = [Decision.of(_row(n, 0), "ingest", "accepted") for n in PIECES]
    info = summary(merge([ingest, decisions]), n_inputs=len(PIECES))
    assert info["adds_up"] and (info["accepted"], info["quarantined"]) == (1, 3)
    assert info["quarantine_reasons"] == {
        "quality:empty_bars": 1, "quality:notes_moved": 1, "quality:silence": 1}  # fmt: skip


def test_the_shipped_params_quarantine_nothing_without_reading_a_score(tmp_path: Path) -> None:
    cfg = stage_configs(BY_NAME["quality"], str(REPO / "params.yaml"))["quality"]
    assert QualityStage({"quality": cfg}, {}).passes_everything()  # the build pays nothing
    assert _run(tmp_path, cfg) == []
    assert (tmp_path / "quality" / "decisions.parquet").is_file()
    assert _run(tmp_path / "defaults", QualityConfig()) == []
    # The checks themselves agree: permissive thresholds break nothing.
    permissive = QualityConfig(max_moved_share=1.0, max_empty_bar_share=1.0)
    assert all(
        check(_row(n, moved), _score(n, notes), permissive) is None
        for n, (moved, notes, _) in PIECES.items()
    )
    assert not QualityStage({"quality": STRICT}, {}).passes_everything()


def test_silence_and_empty_bars_are_measured_over_the_bars() -> None:
    gap = _score("gap", [(0, 4), (4, 1), (8, 4), (12, 4)])
    assert longest_silence(gap) == 3 and empty_bars(gap) == 0
    tail = _score("tail", [(0, 2)])  # the rest of the piece is silent
    assert longest_silence(tail) == 14 and empty_bars(tail) == 3


@pytest.mark.parametrize("bad", [{"max_moved_share": 1.5}, {"max_silence_quarters": -1}])
def test_a_threshold_out_of_range_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        QualityConfig(**bad)  # type: ignore[arg-type]


def test_gnm_data_stats_counts_what_quality_kept_out_of_the_shards(tmp_path: Path) -> None:
    from pipeline.cli.inspect import rejection_lines

    _run(tmp_path, STRICT)  # writes tmp_path/quality/decisions.parquet beside the store
    assert rejection_lines(tmp_path) == [
        "rejected by quality: 3 (quality:empty_bars 1, quality:notes_moved 1, quality:silence 1)"
    ]
