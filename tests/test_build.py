from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline.build import build, dvc_available, stage_commands
from pipeline.cli import main
from pipeline.ledger import read_decisions
from pipeline.params import load_params
from pipeline.profile_pipelines import dvc_file, profile_dvc_yaml
from pipeline.stages import STAGES as REGISTRY
from tests.helpers import REPO, make_build_root

STAGES = [stage.name for stage in REGISTRY]  # the registry is dvc.yaml's order (test_stages)


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_profile_pipelines_are_the_top_level_one_with_their_profile(profile: str) -> None:
    expected = profile_dvc_yaml((REPO / "dvc.yaml").read_text(), profile)
    assert dvc_file(REPO, profile).read_text() == expected
    names = [name for name, _ in stage_commands(dvc_file(REPO, profile), profile)]
    assert names == STAGES
    assert profile in load_params(REPO / "params.yaml").profiles


def test_every_stage_command_is_a_real_gnm_command() -> None:
    runner = CliRunner()
    for name, command in stage_commands(REPO / "dvc.yaml", "default"):
        words = command.split()
        assert words[:2] == ["gnm", "data"], name
        result = runner.invoke(main, [*words[1:3], "--help"])
        assert result.exit_code == 0, (name, result.output)
        for option in (w for w in words[3:] if w.startswith("--")):
            assert option in result.output, (name, option)


def test_the_tiny_build_accounts_for_every_input(tiny_build: Path) -> None:
    ledger = json.loads((tiny_build / "reports/default/ledger.json").read_text())
    assert ledger["adds_up"] and ledger["items"] == 13
    index = json.loads((tiny_build / "data/default/shards/index.json").read_text())
    shard_rows = sum(s["rows"] for s in index["shards"])
    assert shard_rows == ledger["accepted"]
    ids = set()
    for shard in index["shards"]:
        ids |= set(
            pq.read_table(tiny_build / "data/default/shards" / shard["file"], columns=["id"])[
                "id"
            ].to_pylist()
        )
    accepted = {
        d.id for d in read_decisions(tiny_build / "reports/default/ledger.parquet") if d.kind == "accepted"
    }  # fmt: skip
    assert ids == accepted
    stats = json.loads((tiny_build / "reports/default/stats.json").read_text())
    assert stats["totals"]["pieces"] == shard_rows
    assert sorted(p.name for p in (tiny_build / "reports/default/plots").iterdir()) == [
        "bars_per_meter.png", "quantisation_loss.png", "token_types.png",
        "tokens_per_bar.png", "tokens_per_piece.png",
    ]  # fmt: skip


def test_a_second_build_gives_byte_identical_outputs(tiny_build: Path, tmp_path: Path) -> None:
    again = make_build_root(tmp_path / "again")
    build(again, "default", use_dvc=False, echo=lambda line: None)
    for folder in ("data/default/shards", "data/default/tokenize", "reports/default"):
        first = sorted(
            p.relative_to(tiny_build) for p in (tiny_build / folder).rglob("*") if p.is_file()
        )
        second = sorted(p.relative_to(again) for p in (again / folder).rglob("*") if p.is_file())
        assert first == second and first
        for rel in first:
            assert (tiny_build / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_an_unknown_profile_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["data", "build", "--profile", "nope", "--root", str(tmp_path)]
    )
    assert result.exit_code == 1 and "no pipeline for profile 'nope'" in result.output


@pytest.mark.corpus
@pytest.mark.skipif(
    not dvc_available(), reason="DVC is not installed (scripts/setup.sh installs it)"
)
def test_dvc_repro_builds_then_does_nothing_then_reruns_only_what_changed(tmp_path: Path) -> None:
    root = make_build_root(tmp_path / "repo", "{m21-bach: 4, m21-chopin: null}")
    # DVC hashes the code its stages depend on: give it the package and a git repository.
    shutil.copytree(
        REPO / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(REPO / "schemas", root / "schemas")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "core.analytics", "false"],
    ):
        subprocess.run(command, cwd=root, check=True, capture_output=True, env=env)

    def repro() -> str:
        done = subprocess.run(["dvc", "repro"], cwd=root, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    first = repro()
    assert all(f"Running stage '{s}'" in first for s in STAGES)
    assert (root / "dvc.lock").is_file() and (root / "data/default/shards/index.json").is_file()
    second = repro()
    assert "Running stage" not in second and "up to date" in second
    declaration = root / "corpora/m21-chopin.yaml"
    declaration.write_text(
        declaration.read_text().replace("description:", "description: (edited)", 1)
    )
    third = repro()
    # The stages that read declarations rerun; their outputs are the same, so nothing else does.
    assert [s for s in STAGES if f"Running stage '{s}'" in third] == ["ingest", "verify"]
