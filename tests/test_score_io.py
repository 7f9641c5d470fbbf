from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.io.score_io import score_from_dict, score_to_dict
from pipeline.io.score_store import ScoreWriter, iter_scores
from tests.helpers import TEST_DATA, m21_path, read_one


@pytest.mark.parametrize(
    "source", ["bach/bwv66.6.mxl", "chopin/mazurka06-2.krn", "beethoven/opus133.mxl"]
)
def test_dict_round_trip_is_exact(source: str) -> None:
    score = read_one(m21_path(source))
    assert score_from_dict(json.loads(json.dumps(score_to_dict(score)))) == score


def test_tables_round_trip_is_exact(tmp_path: Path) -> None:
    scores = [read_one(TEST_DATA / "edge_cases.musicxml"), read_one(m21_path("bach/bwv66.6.mxl"))]
    scores = [
        dataclasses.replace(s, meta=dataclasses.replace(s.meta, id=f"x/{i}"))
        for i, s in enumerate(scores)
    ]
    schema = pa.schema([("id", pa.string()), ("score_json", pa.string())])
    with ScoreWriter(tmp_path, schema) as writer:
        for score in scores:
            writer.write({}, score)
    assert [s for _, s in iter_scores(tmp_path)] == scores
