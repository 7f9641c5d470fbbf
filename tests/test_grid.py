from __future__ import annotations

import json
from fractions import Fraction as F
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import main
from pipeline.score import Meter, Note, Score, ScoreMeta, bars_from_meters
from pipeline.stages.grid import grid_report
from tests.helpers import REPO, make_build_root


def score(onsets: list[F]) -> Score:
    notes = tuple(sorted(Note(o, 60, F(1, 8)) for o in onsets))
    return Score(ScoreMeta("g"), notes, bars_from_meters([Meter(4, 4)] * 2)).validate()


def test_off_grid_shares_by_corpus_and_composer() -> None:
    thirty_seconds = score([F(k, 8) for k in range(8)])  # half of them are off a 12 grid
    quintuplets = score([F(k, 5) for k in range(5)])  # 4 of 5 off every power-of-two-times-3 grid
    tallies = grid_report(
        [
            (thirty_seconds, {"corpus": "a", "composer": "X"}),
            (quintuplets, {"corpus": "b", "composer": None}),
        ],
        [12, 24],
    )
    assert tallies["corpus"]["a"].shares() == {12: 0.5, 24: 0.0}
    assert tallies["corpus"]["b"].shares() == {12: 0.8, 24: 0.8}
    assert tallies["composer"]["(none)"].notes == 5
    assert tallies["all"]["all"].off == {12: 8, 24: 4}


def test_grid_report_command_on_a_real_corpus(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["data", "grid-report", "--corpora", str(REPO / "corpora"), "--corpus", "m21-chopin", "--resolutions", "12,24",
         "--cache", str(tmp_path), "--scheduler", "inline", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["resolutions"] == [12, 24]
    chopin = report["composer"]["Chopin"]
    assert (
        chopin["notes"] > 700 and chopin["off_grid_share"]["24"] <= chopin["off_grid_share"]["12"]
    )
    bad = CliRunner().invoke(main, ["data", "grid-report", "--resolutions", "twelve"])
    assert bad.exit_code == 2 and "not a list of integers" in bad.stderr


def test_grid_report_reads_the_corpora_of_a_profile(tmp_path: Path) -> None:
    root = make_build_root(tmp_path / "repo", "{m21-bach: 1}")
    params = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(
        params.replace("profiles:\n", "profiles:\n  mine:\n    corpora: [m21-chopin]\n", 1)
    )
    common = ["data", "grid-report", "--corpora", str(root / "corpora"), "--resolutions", "12",
              "--cache", str(tmp_path / "cache"), "--scheduler", "inline", "--json"]  # fmt: skip
    result = CliRunner().invoke(
        main, [*common, "--profile", "mine", "--params", str(root / "params.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.stdout)["corpus"]) == ["m21-chopin"]
    # Without --params only the built-in profiles exist: the error says how to reach yours.
    unknown = CliRunner().invoke(main, [*common, "--profile", "mine"])
    assert unknown.exit_code == 1 and "give --params params.yaml" in unknown.output
