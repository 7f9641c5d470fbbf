from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.io.score_store import ScoreWriter, count_scores, iter_scores
from tests.helpers import m21_path, read_one

SCHEMA = pa.schema([("id", pa.string()), ("corpus", pa.string()), ("score_json", pa.string())])


def test_scores_round_trip_through_a_folder_in_small_batches(tmp_path: Path) -> None:
    names = ["bach/bwv66.6.mxl", "mozart/k155/movement2.mxl", "chopin/mazurka06-2.krn"]
    scores = [read_one(m21_path(n)) for n in names]
    scores = sorted((s.replace(meta=dataclasses.replace(s.meta, id=f"x/{n}")) for s, n in zip(scores, names, strict=True)), key=lambda s: s.meta.id)  # fmt: skip
    with ScoreWriter(tmp_path, SCHEMA) as writer:
        for score in scores:
            writer.write({"corpus": "x"}, score)
    assert count_scores(tmp_path) == 3
    back = list(iter_scores(tmp_path, batch_size=1))
    assert [row["corpus"] for row, _ in back] == ["x"] * 3
    assert [s for _, s in back] == scores
    # Note batches that cut pieces anywhere (a piece across several batches, a batch holding the
    # end of one piece and the start of the next) give the same notes.
    for rows in (1, 7, 100, 1000):
        again = [s for _, s in iter_scores(tmp_path, note_rows=rows)]
        assert [s.notes for s in again] == [s.notes for s in scores]


def test_out_of_order_writes_fail_and_leave_no_output(tmp_path: Path) -> None:
    score = read_one(m21_path("bach/bwv66.6.mxl"))
    with pytest.raises(ValueError, match="id order"), ScoreWriter(tmp_path, SCHEMA) as writer:
        writer.write({}, score.replace(meta=dataclasses.replace(score.meta, id="b")))
        writer.write({}, score.replace(meta=dataclasses.replace(score.meta, id="a")))
    assert list(tmp_path.iterdir()) == []
