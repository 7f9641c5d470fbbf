"""The walkthrough "Adding a corpus or a composer" (docs/adding-a-corpus.md), step by step, on a
tiny build."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline.build import build
from pipeline.cli import main
from pipeline.io.shards import open_shards
from pipeline.params import load_params
from pipeline.profile_pipelines import profile_dvc_yaml
from tests.helpers import REPO, TEST_DATA, m21_path, make_build_root


@pytest.mark.corpus
def test_a_new_corpus_with_a_new_composer_reaches_the_shards_with_its_own_token(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    root = make_build_root(tmp_path / "repo", "{m21-bach: 3, m21-chopin: null}")
    build(root, "default", use_dvc=False, echo=lambda line: None)
    old = open_shards(root / "data/default/shards")
    capfd.readouterr()

    # 1. A folder of scores under the data root.
    folder = root / "data-root" / "haydn"
    folder.mkdir(parents=True)
    for movement in ("movement1", "movement2"):
        shutil.copy(m21_path(f"haydn/opus74no1/{movement}.mxl"), folder / f"op74no1-{movement}.mxl")
    # 2. Declare it: a composer gets a Composer token, the corpus joins the default profile.
    result = CliRunner().invoke(main, [
        "data", "add-corpus", "haydn-quartets", "--path", str(folder), "--genre", "classical",
        "--composer", "Haydn", "--profile", "default", "--corpora", str(root / "corpora"),
        "--data-root", str(root / "data-root"), "--params", str(root / "params.yaml"),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "new token Composer_Haydn" in result.output
        and "added haydn-quartets to profile default" in result.output
    )
    params = load_params(root / "params.yaml")
    assert (
        params.vocab.composers[-1] == "Haydn"
        and "haydn-quartets" in params.profile("default").corpora
    )
    # 3. Rebuild: only the two new files are parsed.
    (root / "params.yaml").write_text(
        (root / "params.yaml")
        .read_text()
        .replace("data_root: ../shared/data", f"data_root: {root / 'data-root'}")
    )
    build(root, "default", use_dvc=False, echo=lambda line: None)
    out = capfd.readouterr().out
    assert "2 parsed" in out and "from cache" in out
    new = open_shards(root / "data/default/shards")
    # 4. Old ids are unchanged; the new token is appended.
    assert new.vocab.tokens[: len(old.vocab.tokens)] == old.vocab.tokens
    assert new.vocab.tokens[-1] == "Composer_Haydn"
    rows = []
    for path in new.files():
        rows += pq.read_table(
            path, columns=["id", "composer", "composer_token", "tokens"]
        ).to_pylist()
    haydn = [r for r in rows if r["composer"] == "Haydn"]
    assert len(haydn) == 2 and all(r["composer_token"] == "Composer_Haydn" for r in haydn)
    assert all(r["tokens"][0] == len(new.vocab.tokens) - 1 for r in haydn)
    stats = json.loads((root / "reports/default/stats.json").read_text())
    assert "Haydn" in {r["name"] for r in stats["by"]["composer"]}


WALKTHROUGH = REPO / "docs" / "adding-a-corpus.md"


def walkthrough_text() -> str:
    """The walkthrough page, continuation lines joined, spaces collapsed."""
    text = WALKTHROUGH.read_text()
    return " ".join(text.replace("\\\n", " ").split())


def walkthrough_command(command: str) -> list[str]:
    """The arguments after `gnm` of a command the walkthrough writes exactly so."""
    assert command in walkthrough_text(), f"{WALKTHROUGH.name} no longer says: {command}"
    return shlex.split(command)[1:]


# The walkthrough's commands, in its order, as the build below runs them (<file>: a file name).
DECLARE = (
    "gnm data add-corpus haydn-quartets --path ../shared/data/haydn --genre classical "
    '--composer Haydn --profile haydn --profile-description "Haydn\'s quartets" '
    "--params params.yaml"
)
BUILD = "gnm data build --profile haydn"
STATS = "gnm data stats --by composer --profile haydn"
QUARANTINED = "gnm data ledger --status quarantined --profile haydn"
INSPECT = "gnm data inspect haydn-quartets/<file> --profile haydn -o x.mid"


def test_the_walkthrough_writes_each_command_the_build_below_runs() -> None:
    for command in (DECLARE, BUILD, STATS, QUARANTINED, INSPECT):
        assert walkthrough_command(command)[:2] == shlex.split(command)[1:3]


@pytest.mark.corpus
def test_a_new_profile_made_by_add_corpus_builds_and_step_4_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # The walkthrough's layout: the repository beside ../shared/data, the data root params.yaml names.
    root = make_build_root(tmp_path / "repo", "{m21-bach: 3}")
    monkeypatch.chdir(root)
    monkeypatch.delenv("GNM_DATA_ROOT", raising=False)
    # The stages' `gnm` runs this checkout's code, wherever the installed script points.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    # The build runs `dvc repro` when DVC is installed; this folder is no DVC repository, so it
    # takes the build's documented other way: the same stages, run directly.
    monkeypatch.setattr("pipeline.build.dvc_available", lambda: False)
    runner = CliRunner()

    def gnm(command: str, file: str = "") -> str:
        args = [arg.replace("<file>", file) for arg in walkthrough_command(command)]
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        return result.output

    # 1. A folder of scores under the data root, one of them empty (the ledger will say so).
    folder = tmp_path / "shared/data/haydn"
    folder.mkdir(parents=True)
    shutil.copy(m21_path("haydn/opus74no1/movement1.mxl"), folder / "op74no1-movement1.mxl")
    shutil.copy(TEST_DATA / "no_notes.musicxml", folder / "no_notes.musicxml")
    # 2. Declare it in a profile params.yaml does not have: add-corpus creates the profile.
    out = gnm(DECLARE)
    assert "created profile haydn" in out and "wrote profiles/haydn/dvc.yaml" in out, out
    assert (root / "profiles/haydn/dvc.yaml").read_text() == profile_dvc_yaml(
        (root / "dvc.yaml").read_text(), "haydn"
    )
    params = load_params("params.yaml")
    assert params.profile("haydn").corpora == {"haydn-quartets": None}
    assert params.profile("haydn").description == "Haydn's quartets"
    # ... and more declared corpora on its `corpora:` line, as the walkthrough says.
    (root / "params.yaml").write_text(
        (root / "params.yaml")
        .read_text()
        .replace("corpora: [haydn-quartets]", "corpora: [haydn-quartets, m21-chopin]")
    )
    # 3. Build the new profile.
    out = gnm(BUILD)
    assert "build haydn: finished" in out and "shards in data/haydn/shards" in out, out
    assert "ingest: 3 files -> 3 items" in capfd.readouterr().out  # Haydn's 2, Chopin's 1
    assert not (root / "data/default").exists()  # nothing below reads the default profile
    # 4. Look, with --profile: each command exactly as the walkthrough writes it.
    stats = gnm(STATS)
    assert "data/haydn/shards:" in stats and "Haydn" in stats and "Chopin" in stats, stats
    quarantined = gnm(QUARANTINED)
    assert quarantined.split("\t")[:2] == [
        "haydn-quartets/no_notes.musicxml",
        "quarantined:no_notes",
    ], quarantined
    piece = gnm(INSPECT, file="op74no1-movement1.mxl")
    assert "composer_token: Composer_Haydn" in piece and "wrote x.mid" in piece, piece
    assert (root / "x.mid").stat().st_size > 1000
