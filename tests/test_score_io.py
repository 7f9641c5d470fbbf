from __future__ import annotations

import json

import pytest

from pipeline.score_io import notes_table, score_from_dict, score_to_dict, scores_from_tables
from tests.conftest import TEST_DATA, m21_path, read_one


@pytest.mark.parametrize(
    "source", ["bach/bwv66.6.mxl", "chopin/mazurka06-2.krn", "beethoven/opus133.mxl"]
)
def test_dict_round_trip_is_exact(source: str) -> None:
    score = read_one(m21_path(source))
    assert score_from_dict(json.loads(json.dumps(score_to_dict(score)))) == score


def test_tables_round_trip_is_exact() -> None:
    scores = [read_one(TEST_DATA / "edge_cases.musicxml"), read_one(m21_path("bach/bwv66.6.mxl"))]
    pieces = []
    for s in scores:
        body = score_to_dict(s)
        body["notes"] = []
        pieces.append({"score_json": json.dumps(body)})
    assert scores_from_tables(pieces, notes_table(scores)) == scores
