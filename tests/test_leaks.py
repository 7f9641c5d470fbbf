from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from pipeline.cli import main
from pipeline.errors import GnmError
from pipeline.readers import read_scores
from pipeline.stages.dedupe import GROUPS_SCHEMA, DedupeConfig
from pipeline.stages.shard import ShardConfig, run, split_of
from pipeline.stages.tokenize import TOKENS_SCHEMA
from pipeline.tokenizer import Tokenizer
from pipeline.tokenizer.chain import tokenize_score
from pipeline.tokenizer.decode import NoteOnsets, decode_ids
from pipeline.tokenizer.grammar import Grammar
from tests.helpers import m21_path
from tests.test_shard import VOCAB, token_rows, write_tokens

CFG = ShardConfig(target_tokens=1000)
TOKENIZER = Tokenizer(VOCAB)


def group_in(split: str) -> str:
    """A group id the shard stage puts in `split`."""
    return next(g for g in (f"group-{i}" for i in range(1000)) if split_of(g, CFG) == split)


def real_row(item_id: str, m21_name: str) -> dict[str, Any]:
    """A tokens.parquet row holding the tokens of a file of music21's corpus."""
    ids = tokenize_score(read_scores(m21_path(m21_name))[0], TOKENIZER).ids
    row: dict[str, Any] = {f.name: None for f in TOKENS_SCHEMA}
    row.update(
        id=item_id, corpus=item_id.split("/")[0], genre="classical", notes=0, tokens=ids,
        token_count=len(ids), bars=0, bar_offsets=[], tempo_bin=0, meters=[],
        composer_token="Composer_None",
    )  # fmt: skip
    return row


@pytest.mark.parametrize(
    "name", ["bach/bwv66.6.mxl", "chopin/mazurka06-2.krn", "beethoven/opus18no1/movement3.krn"]
)
def test_note_onsets_are_the_decoders(name: str) -> None:
    ids = tokenize_score(read_scores(m21_path(name))[0], TOKENIZER).ids
    grammar = Grammar(VOCAB)
    notes = decode_ids(ids, grammar).score.notes
    ticks, pitches = NoteOnsets(grammar)(np.array(ids))
    want = sorted((int(n.onset * VOCAB.resolution), n.pitch) for n in notes)
    assert sorted(zip(ticks.tolist(), pitches.tolist(), strict=True)) == want


def test_rows_of_one_work_in_two_splits_are_refused_naming_both(tmp_path: Path) -> None:
    rows = token_rows("ed", 6)
    tokens = write_tokens(tmp_path / "t.parquet", rows)
    groups = {"ed/piece0001.mxl": group_in("train"), "ed/piece0004.mxl": group_in("test")}
    works = {"ed/piece0001.mxl": "Chopin/op50/3", "ed/piece0004.mxl": "Chopin/op50/3"}
    with pytest.raises(GnmError) as info:
        run(tokens, groups, CFG, VOCAB, tmp_path / "out", works=works)
    assert (
        "1 pair(s) of rows in different splits would leak a work: ed/piece0001.mxl (train) and "
        "ed/piece0004.mxl (test): work Chopin/op50/3"
    ) in str(info.value)
    assert not (tmp_path / "out").exists()  # refused before writing anything
    one_group = dict.fromkeys(groups, group_in("test"))
    index = run(tokens, one_group, CFG, VOCAB, tmp_path / "out", works=works)
    assert sum(s["rows"] for s in index["shards"]) == 6


def test_near_duplicates_in_two_splits_are_refused_and_in_one_split_written(
    tmp_path: Path,
) -> None:
    # Two editions of one chorale in music21's corpus (kern and MusicXML), as dedupe would
    # have missed them, and a third piece.
    rows = [
        real_row("a/bwv277.krn", "bach/bwv277.krn"),
        real_row("b/bwv277.mxl", "bach/bwv277.mxl"),
        real_row("c/bwv281.krn", "bach/bwv281.krn"),
    ]
    tokens = write_tokens(tmp_path / "t.parquet", rows)
    groups = {"a/bwv277.krn": group_in("valid"), "b/bwv277.mxl": group_in("train")}
    with pytest.raises(GnmError, match="would leak a work") as info:
        run(tokens, groups, CFG, VOCAB, tmp_path / "out", similarity=DedupeConfig())
    message = str(info.value)
    assert "a/bwv277.krn (valid) and b/bwv277.mxl (train): near-duplicates (containment" in message
    assert "bwv281" not in message
    groups["b/bwv277.mxl"] = groups["a/bwv277.krn"]  # grouped, as dedupe does
    index = run(tokens, groups, CFG, VOCAB, tmp_path / "out", similarity=DedupeConfig())
    assert index["splits"]["valid"]["rows"] == 2


def shard_cli(root: Path) -> Result:
    """`gnm data shard --json` on root/tokenize and root/dedupe, into root/shards."""
    args = ["--tokenize", root / "tokenize", "--dedupe", root / "dedupe", "--out", root / "shards"]
    return CliRunner().invoke(main, ["data", "shard", *map(str, args), "--json"])


def write_groups(folder: Path, groups: dict[str, str], work: str) -> None:
    """A dedupe groups.parquet giving each id its group and one work key."""
    rows = [
        {"id": i, "group": g, "via": "", "containment": 0.0, "work": work}
        for i, g in groups.items()
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=GROUPS_SCHEMA), folder / "groups.parquet")


def test_gnm_data_shard_fails_with_one_line_naming_both_rows(tmp_path: Path) -> None:
    (tmp_path / "tokenize").mkdir()
    (tmp_path / "dedupe").mkdir()
    rows = [
        real_row("a/bwv277.krn", "bach/bwv277.krn"),
        real_row("b/bwv277.mxl", "bach/bwv277.mxl"),
    ]
    write_tokens(tmp_path / "tokenize" / "tokens.parquet", rows)
    VOCAB.save(tmp_path / "tokenize" / "vocab.json")
    groups = {"a/bwv277.krn": group_in("test"), "b/bwv277.mxl": group_in("train")}
    write_groups(tmp_path / "dedupe", groups, "Bach/bwv277")
    result = shard_cli(tmp_path)
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith("gnm: error:") and "\n" not in line
    assert "2 pair(s)" in line and "work Bach/bwv277" in line and "near-duplicates" in line
    assert not (tmp_path / "shards" / "index.json").exists()
    write_groups(tmp_path / "dedupe", dict.fromkeys(groups, group_in("test")), "Bach/bwv277")
    result = shard_cli(tmp_path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["splits"]["test"]["rows"] == 2
