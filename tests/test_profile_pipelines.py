"""A profile's dvc.yaml is made by the tool: by the build, by `gnm data profiles --write`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.profile_pipelines import dvc_file, profile_dvc_yaml
from pipeline.stages import STAGES
from tests.helpers import REPO, make_build_root


def repo_with_profile(tmp_path: Path, name: str = "mine") -> Path:
    """A repository-shaped folder whose params.yaml names `name`, added by hand, without a pipeline."""
    root = make_build_root(tmp_path / "repo", "{m21-bach: 1}")
    params = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(
        params.replace("profiles:\n", f"profiles:\n  {name}:\n    corpora: [m21-chopin]\n", 1)
    )
    return root


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stage commands a build runs, recorded instead of run."""
    commands: list[str] = []

    def record(command: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr("pipeline.build.subprocess.run", record)
    return commands


def test_building_a_profile_params_names_writes_its_pipeline_and_says_so(
    tmp_path: Path, ran: list[str]
) -> None:
    root = repo_with_profile(tmp_path)
    build = ["data", "build", "--profile", "mine", "--no-dvc", "--root", str(root)]
    result = CliRunner().invoke(main, build)
    assert result.exit_code == 0, result.output
    assert "build mine: wrote profiles/mine/dvc.yaml for profile mine (it was missing" in (
        result.output
    )
    generated = profile_dvc_yaml((root / "dvc.yaml").read_text(), "mine")
    assert dvc_file(root, "mine").read_text() == generated
    assert ran[0].startswith("gnm data ingest --profile mine ") and len(ran) == len(STAGES)
    again = CliRunner().invoke(main, build)
    assert again.exit_code == 0 and "wrote profiles/mine" not in again.output


def test_an_out_of_date_pipeline_is_rewritten_and_a_hand_written_one_kept(
    tmp_path: Path, ran: list[str]
) -> None:
    root = repo_with_profile(tmp_path)
    path = dvc_file(root, "mine")
    path.parent.mkdir(parents=True)
    old = profile_dvc_yaml((root / "dvc.yaml").read_text(), "mine").replace("  ledger:", "  x:")
    path.write_text(old)
    result = CliRunner().invoke(main, ["data", "build", "--profile", "mine", "--no-dvc", "--root", str(root)])  # fmt: skip
    assert result.exit_code == 0 and "it was out of date with dvc.yaml" in result.output
    assert path.read_text() == profile_dvc_yaml((root / "dvc.yaml").read_text(), "mine")
    mine = "stages:\n  hello:\n    cmd: echo hello\n"
    path.write_text(mine)
    result = CliRunner().invoke(main, ["data", "build", "--profile", "mine", "--no-dvc", "--root", str(root)])  # fmt: skip
    assert result.exit_code == 0 and "hand-written" in result.output and ran[-1] == "echo hello"
    assert path.read_text() == mine


def test_a_profile_params_does_not_name_is_an_error_that_says_how_to_add_it(
    tmp_path: Path,
) -> None:
    root = repo_with_profile(tmp_path)
    result = CliRunner().invoke(main, ["data", "build", "--profile", "his", "--root", str(root)])
    assert result.exit_code == 1 and "no pipeline for profile 'his'" in result.output
    assert "mine, default, quick, full;" in result.output and "--profile his" in result.output
    assert not (root / "profiles").exists()


def test_profiles_lists_each_pipelines_state_and_write_makes_the_missing_ones(
    tmp_path: Path,
) -> None:
    root = repo_with_profile(tmp_path)
    listed = CliRunner().invoke(main, ["data", "profiles", "--root", str(root), "--json"])
    assert listed.exit_code == 0, listed.output
    states = {p["name"]: p["state"] for p in json.loads(listed.output)["profiles"]}
    assert states == {
        "mine": "missing",
        "default": "top-level",
        "quick": "missing",
        "full": "missing",
    }
    written = CliRunner().invoke(main, ["data", "profiles", "--root", str(root), "--write"])
    assert written.exit_code == 0 and written.output.count("wrote profiles/") == 3
    assert "pipeline: profiles/mine/dvc.yaml (current)" in written.output
    assert "corpora: m21-bach (first 1 file)" in written.output


def test_the_repositorys_profiles_are_all_current() -> None:
    listed = CliRunner().invoke(main, ["data", "profiles", "--root", str(REPO), "--json"])
    assert listed.exit_code == 0, listed.output
    report = json.loads(listed.output)
    assert {p["state"] for p in report["profiles"]} == {"top-level", "current"}
    assert report["pipelines_without_profile"] == []
