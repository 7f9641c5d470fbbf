"""The per-item stages run partitioned on the executor give byte-identical outputs inline and on a
local cluster of one or two workers (item order, skip sets and batching do not depend on it)."""

from __future__ import annotations

from fractions import Fraction
from functools import partial
from pathlib import Path

import pytest

from pipeline.executor import map_partitioned
from pipeline.io.score_store import ScoreWriter
from pipeline.ledger import Decision, write_decisions
from pipeline.music.meter import MeterConfig
from pipeline.music.quantize import QuantizeConfig
from pipeline.score import Meter, Note, Score, ScoreMeta, bars_from_meters
from pipeline.stages import BY_NAME
from pipeline.stages.base import Mapper, pieces_schema, run_item_stage
from pipeline.stages.meter import MeterStage
from pipeline.stages.quality import QualityConfig, QualityStage
from pipeline.stages.quantize import QuantizeStage
from pipeline.stages.tokenize import TokenizeStage
from pipeline.stages.verify import VerifyConfig
from pipeline.tokenizer.vocab import VocabConfig

METERS = [Meter(4, 4), Meter(3, 4), Meter(6, 8), Meter(5, 4), Meter(11, 8)]  # 11/8: no rule


def _score(i: int) -> tuple[dict[str, object], Score]:
    meter = METERS[i % len(METERS)]
    bars = bars_from_meters([meter] * (2 + i % 3))
    step = Fraction(1, 2 + i % 4)  # thirds, fifths: some onsets off the grid
    notes, onset = [], Fraction(0)
    while onset + step <= bars[-1].end:
        notes.append(Note(onset, 48 + (i + len(notes)) % 30, step))
        onset += step * (1 + len(notes) % 3)
    sid = f"syn/{i:03d}"
    row = {"id": sid, "corpus": "syn", "rel_path": f"{i:03d}.mid", "item": None,
           "composer": "Bach" if i % 2 else "Haydn", "notes": len(notes)}  # fmt: skip
    return row, Score(ScoreMeta(sid), tuple(notes), bars).validate()


def _build(root: Path, mapper: Mapper) -> dict[str, bytes]:
    """ingest-like store -> meter -> quantize -> quality -> tokenize under `root`."""
    ingest = root / "ingest"
    items = [_score(i) for i in range(90)]
    with ScoreWriter(ingest, pieces_schema("ingest", BY_NAME)) as writer:
        for row, score in items:
            writer.write(row, score)
    write_decisions(
        [Decision.of(r, "ingest", "accepted") for r, _ in items], ingest / "decisions.parquet"
    )
    rejected = [Decision.of(items[3][0], "dedupe", "duplicate_of:syn/000")]
    write_decisions(rejected, root / "dedupe" / "decisions.parquet")
    write_decisions([], root / "verify" / "decisions.parquet")
    configs = {"meter": MeterConfig(), "verify": VerifyConfig(), "quantize": QuantizeConfig(),
               "quality": QualityConfig(max_moved_share=0.5), "vocab": VocabConfig()}  # fmt: skip
    folders = {name: root / name for name in ("ingest", "dedupe", "verify", "meter", "quantize",
                                              "quality", "tokenize")}  # fmt: skip
    for name, cls in (("meter", MeterStage), ("quantize", QuantizeStage),
                      ("quality", QualityStage), ("tokenize", TokenizeStage)):  # fmt: skip
        spec = BY_NAME[name]
        stage = cls(configs, folders)
        schema = pieces_schema(name, BY_NAME) if stage.writes == "scores" else None
        run_item_stage(spec, stage, folders, folders[name], schema, mapper=mapper)
    return {
        str(p.relative_to(root)): p.read_bytes()
        for name in ("meter", "quantize", "quality", "tokenize")
        for p in sorted((root / name).iterdir())
    }


def test_the_synthetic_build_rejects_at_every_deciding_stage(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = _build(tmp_path, partial(map_partitioned, scheduler="inline"))
    for name in ("meter", "quality"):  # 11/8 pieces; pieces with thirds and fifths moved
        assert pq.read_table(tmp_path / name / "decisions.parquet").num_rows > 0, name
    tokens = pq.read_table(tmp_path / "tokenize" / "tokens.parquet").column("id").to_pylist()
    assert "syn/003" not in tokens and tokens == sorted(tokens) and len(tokens) > 20
    assert "tokenize/vocab.json" in out


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_outputs_are_byte_identical_inline_and_on_a_local_cluster(
    tmp_path: Path, workers: int
) -> None:
    inline = _build(tmp_path / "inline", partial(map_partitioned, scheduler="inline"))
    # Small partitions: many windows, so that order across partitions and windows is exercised.
    local = partial(map_partitioned, scheduler=None, workers=workers, partition=7)
    assert _build(tmp_path / f"local{workers}", local) == inline
