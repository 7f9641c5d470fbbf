"""The README walkthrough "Adding a corpus or a composer", step by step, on a tiny build."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline.build import build
from pipeline.cli import main
from pipeline.params import load_params
from pipeline.stages.shard import open_shards
from tests.conftest import m21_path, make_build_root


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
