from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.io.shards import open_shards
from pipeline.readers import read_scores
from pipeline.stages.stats import _bar_lengths, compute, token_type


def test_token_type_is_the_prefix() -> None:
    assert [token_type(t) for t in ("Pitch_60", "Bar", "TS_6/8", "Composer_None")] == [
        "Pitch", "Bar", "TS", "Composer",
    ]  # fmt: skip


def test_statistics_add_up(tiny_build: Path) -> None:
    shards = open_shards(tiny_build / "data/default/shards")
    stats = compute(shards)
    totals = stats["totals"]
    assert sum(stats["token_types"].values()) == totals["tokens"]
    assert sum(stats["token_counts"].values()) == totals["tokens"]
    assert stats["token_types"]["Bar"] == totals["bars"] == sum(stats["meters"]["after"].values())
    for by in ("corpus", "genre", "composer", "split"):
        for key in ("pieces", "bars", "tokens", "notes", "notes_moved"):
            assert sum(r[key] for r in stats["by"][by]) == totals[key], (by, key)
    # Every token is in exactly one bar, except the 3-token prefix and EOS of each piece.
    lengths = 0
    for path in shards.files():
        table = pq.read_table(path)
        counts = table.column("token_count").to_numpy().astype("int64")
        lengths += int(_bar_lengths(table.column("bar_offsets").combine_chunks(), counts).sum())
    assert lengths + 4 * totals["pieces"] == totals["tokens"]
    assert stats["tokens_per_bar"]["count"] == totals["bars"]


def test_source_ratio_per_corpus_is_notes_read_over_notes_written(tiny_build: Path) -> None:
    shards = open_shards(tiny_build / "data/default/shards")
    rows = [r for f in shards.files() for r in pq.read_table(f).to_pylist()]
    stats = compute(shards)
    for group in stats["by"]["corpus"]:
        mine = [r for r in rows if r["corpus"] == group["name"] and r["source_notes"]]
        assert group["counted_pieces"] == len(mine)
        expected = sum(r["notes"] for r in mine) / sum(r["source_notes"] for r in mine)
        assert group["source_ratio"] == round(expected, 4)
        assert 0.98 <= group["source_ratio"] <= 1.05  # verify quarantines readings under 0.98
    table = CliRunner().invoke(main, ["data", "stats", "--shards", str(shards.folder)]).output
    assert "read/src" in table


def test_stats_command_tables_and_json(tiny_build: Path) -> None:
    runner = CliRunner()
    shards = str(tiny_build / "data/default/shards")
    for by in ("corpus", "composer", "genre", "meter", "split"):
        result = runner.invoke(main, ["data", "stats", "--shards", shards, "--by", by])
        assert result.exit_code == 0, result.output
    assert (
        "Bach"
        in runner.invoke(main, ["data", "stats", "--shards", shards, "--by", "composer"]).output
    )
    data = json.loads(runner.invoke(main, ["data", "stats", "--shards", shards, "--json"]).output)
    assert data["format"] == "gnm-stats/1" and data["resolution"] == 12
    missing = runner.invoke(main, ["data", "stats", "--shards", str(tiny_build / "nope")])
    assert missing.exit_code == 1 and "index.json: missing" in missing.output


def test_read_commands_default_to_the_default_profiles_folders(
    tiny_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tiny_build)  # holds data/default/ and reports/default/, as a build leaves
    runner = CliRunner()
    result = runner.invoke(main, ["data", "stats"])
    assert result.exit_code == 0 and "data/default/shards:" in result.output, result.output
    reports = tmp_path / "reports"
    ledger = runner.invoke(main, ["data", "ledger", "--reports", str(reports), "--json"])
    assert ledger.exit_code == 0 and json.loads(ledger.output)["adds_up"], ledger.output
    assert "tokenize" in json.loads(ledger.output)["stages"]
    other = runner.invoke(main, ["data", "ledger", "--profile", "full", "--reports", str(reports)])
    assert other.exit_code == 1 and "data/full/ingest/decisions.parquet: missing" in other.output
    piece = runner.invoke(
        main, ["data", "inspect", "m21-chopin/chopin/mazurka06-2.krn", "--bars", "1"]
    )
    assert piece.exit_code == 0, piece.output


def test_inspect_shows_a_piece_and_writes_what_the_model_sees(
    tiny_build: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    shards = str(tiny_build / "data/default/shards")
    piece = "m21-chopin/chopin/mazurka06-2.krn"
    result = runner.invoke(
        main,
        [
            "data",
            "inspect",
            piece,
            "--shards",
            shards,
            "--bars",
            "2",
            "-o",
            str(tmp_path / "m.mid"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "composer_token: Composer_Chopin" in result.output
        and "ledger ingest: accepted" in result.output
    )
    assert "bar 2: Bar TS_3/4" in result.output and "bar 3:" not in result.output
    data = json.loads(
        runner.invoke(
            main, ["data", "inspect", piece, "--shards", shards, "--json", "--bars", "0"]
        ).output
    )
    assert data["prefix"] == ["Composer_Chopin", data["prefix"][1], "BOS"]
    written = read_scores(tmp_path / "m.mid")[0]
    assert len(written.bars) == len(data["bars"]) == data["meta"]["bars"]
    assert len(written.notes) <= data["meta"]["notes"]  # unisons across parts merge
    unknown = runner.invoke(main, ["data", "inspect", "mazurka", "--shards", shards])
    assert (
        unknown.exit_code == 1
        and "did you mean: m21-chopin/chopin/mazurka06-2.krn" in unknown.output
    )


def test_inspect_writes_under_the_time_limit(
    tiny_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def hang(*args: object, **kwargs: object) -> None:
        time.sleep(60)

    monkeypatch.setattr("pipeline.tokenizer.Tokenizer.decode_full", hang)
    piece = "m21-chopin/chopin/mazurka06-2.krn"
    shards = str(tiny_build / "data/default/shards")
    args = ["data", "inspect", piece, "--shards", shards, "-o", str(tmp_path / "m.mid")]
    result = CliRunner().invoke(main, [*args, "--timeout", "1"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"gnm: error: {piece}: timeout (still running after 1 s)"
    )
    assert list(tmp_path.iterdir()) == []
