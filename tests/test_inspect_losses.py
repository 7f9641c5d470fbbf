from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.inspect_losses import header_lines, losses
from tests.helpers import REPO
from tests.test_parser_messages import MUSIC21_SAYS, _corpus

SHORT = "warn/unparseable_event.krn"  # music21 drops its 1/8192 note: 7 of 8 notes read


@pytest.fixture(scope="module")
def short_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stage folders of a corpus holding a piece read short, built with verify letting it pass
    (min_source_ratio 0.5), as a build from before the check or with a lower ratio would."""
    tmp = tmp_path_factory.mktemp("short")
    root, corpora = _corpus(tmp)
    params = tmp / "params.yaml"
    text = (REPO / "params.yaml").read_text()
    params.write_text(text.replace("min_source_ratio: 0.98", "min_source_ratio: 0.5", 1))
    d = tmp / "stages"
    p = ["--params", str(params)]
    runs = [
        ["ingest", "--corpora", str(corpora), "--data-root", str(root), "--no-cache",
         "--scheduler", "inline", "--out", f"{d}/ingest"],
        ["dedupe", "--ingest", f"{d}/ingest", "--out", f"{d}/dedupe"],
        ["verify", "--corpora", str(corpora), "--ingest", f"{d}/ingest", "--out", f"{d}/verify"],
        ["meter", "--ingest", f"{d}/ingest", "--dedupe", f"{d}/dedupe", "--verify",
         f"{d}/verify", "--out", f"{d}/meter"],
        ["quantize", "--meter", f"{d}/meter", "--out", f"{d}/quantize"],
        ["quality", "--quantize", f"{d}/quantize", "--out", f"{d}/quality"],
        ["tokenize", "--quantize", f"{d}/quantize", "--quality", f"{d}/quality", "--out",
         f"{d}/tokenize"],
        ["shard", "--tokenize", f"{d}/tokenize", "--dedupe", f"{d}/dedupe", "--out", f"{d}/shards"],
    ]  # fmt: skip
    for args in runs:
        result = CliRunner().invoke(main, ["data", *args, *p])
        assert result.exit_code == 0, (args, result.output)
    return d


def test_inspect_says_a_piece_read_short_lost_notes(short_build: Path) -> None:
    shards = str(short_build / "shards")
    result = CliRunner().invoke(main, ["data", "inspect", SHORT, "--shards", shards, "--bars", "1"])
    assert result.exit_code == 0, result.output
    header = {line.split(": ", 1)[0].strip(): line.split(": ", 1)[1] for line in result.output.splitlines() if ": " in line}  # fmt: skip
    assert header["notes"] == (
        "7 read of 8 written (87.5%) — LOST: under verify's min_source_ratio 0.98; "
        "1 of the source's notes are missing"
    )
    assert header["quantisation"].startswith("0 of 7 notes moved (0.0%)")
    assert header["parser warnings"] == "1 (see ledger ingest)"
    assert header["ledger ingest"].startswith(
        f'accepted reader_fallback:kern:duration; parser_warnings:1 (first: "{MUSIC21_SAYS}'
    )
    data = json.loads(
        CliRunner().invoke(main, ["data", "inspect", SHORT, "--shards", shards, "--json"]).output
    )
    assert data["losses"]["reading"] == {
        "notes": 7, "accounted": 7, "source_notes": 8, "ratio": 0.875,
        "min_source_ratio": 0.98, "lost": True,
    }  # fmt: skip
    assert data["losses"]["parser_warnings"] == 1


def test_inspect_of_a_whole_reading_lists_its_counted_changes(short_build: Path) -> None:
    shards = str(short_build / "shards")
    result = CliRunner().invoke(
        main, ["data", "inspect", "warn/two_tunes.abc#X:1", "--shards", shards, "--json"]
    )
    found = json.loads(result.output)["losses"]
    assert found["reading"]["lost"] is False and found["reading"]["ratio"] >= 0.98
    assert (
        "LOST"
        not in CliRunner()
        .invoke(main, ["data", "inspect", "warn/two_tunes.abc#X:1", "--shards", shards])
        .output
    )


def test_loss_lines_split_drops_from_changes_and_name_uncounted_sources() -> None:
    row = {"notes": 911, "source_notes": None, "notes_moved": 12, "onsets_moved": 10,
           "durations_moved": 4, "moved_tuplet": 8, "moved_finer_value": 4,
           "onset_error_max_ticks": 2.0, "durations_clipped": 3, "grace_dropped": 5,
           "octave_folded": 2, "unison_merged": 0}  # fmt: skip
    report = {"ties_merged": 40.0, "reader_fallback:kern:duration": 1.0, "chord_symbols_ignored": 6.0, "zero_duration_dropped": 1.0,
              "source_measures": 30.0, "notes_moved": 12.0, "parser_warnings": 0.0}  # fmt: skip
    found = losses(row, report, 0.98)
    assert found["dropped"] == {
        "chord_symbols_ignored": 6,
        "grace_dropped": 5,
        "zero_duration_dropped": 1,
    }
    assert found["changed"] == {"octave_folded": 2, "ties_merged": 40}
    assert found["reading"]["accounted"] == 912 and found["reading"]["ratio"] is None
    lines = dict(header_lines(found))
    assert lines["notes"] == "911 (not counted in the source: MIDI, or an uncountable file)"
    assert lines["quantisation"] == (
        "12 of 911 notes moved (1.3%): 10 onsets, 4 durations (8 tuplet, 4 finer value); "
        "onset error max 2 ticks; 3 durations clipped"
    )
    assert lines["dropped"] == "chord_symbols_ignored 6, grace_dropped 5, zero_duration_dropped 1"
    assert "parser warnings" not in lines
    row["source_notes"] = 2_284
    assert dict(header_lines(losses(row, report, 0.98)))["notes"] == (
        "911 read (+1 dropped and counted) of 2,284 written (39.9%) — LOST: under verify's "
        "min_source_ratio 0.98; 1,372 of the source's notes are missing"
    )
