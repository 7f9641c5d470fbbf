"""`gnm data add-corpus` is all or nothing: a refusal or a failed write leaves every file as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pipeline import add_corpus
from pipeline.cli import main
from pipeline.params import load_params
from tests.helpers import m21_path, make_build_root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under the repository-shaped `root`, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository-shaped folder with a data root holding one Haydn movement."""
    root = make_build_root(tmp_path / "repo", "{m21-bach: 3}")
    shutil.copytree(Path(__file__).parents[1] / "profiles", root / "profiles")
    folder = tmp_path / "data/haydn"
    folder.mkdir(parents=True)
    shutil.copy(m21_path("haydn/opus74no1/movement1.mxl"), folder / "movement1.mxl")
    return root


def add(root: Path, *options: str) -> Result:
    """`gnm data add-corpus haydn-quartets` on the data root beside `root`, plus `options`."""
    data = root.parent / "data"
    return CliRunner().invoke(main, [
        "data", "add-corpus", "haydn-quartets", "--path", str(data / "haydn"),
        "--genre", "classical", "--corpora", str(root / "corpora"), "--data-root", str(data),
        "--params", str(root / "params.yaml"), *options,
    ])  # fmt: skip


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (["--composer", "None", "--profile", "haydn"], "must not contain 'None'"),
        (["--composer", "Haydn", "--priority", "5000"], "priority"),
        (["--composer", "Haydn", "--profile", "Haydn Quartets"], "profile name 'Haydn Quartets'"),
        (
            ["--composer", "Haydn", "--profile", "nope", "--profile", "quick", "--profile", "x y"],
            "x y",
        ),
    ],
)
def test_a_refused_add_corpus_changes_nothing_and_runs_again_without_force(
    repo: Path, options: list[str], reason: str
) -> None:
    before = snapshot(repo)
    refused = add(repo, *options)
    assert refused.exit_code == 1 and reason in refused.output, refused.output
    assert snapshot(repo) == before
    done = add(repo, "--composer", "Haydn", "--profile", "haydn", "--profile", "quick")
    assert done.exit_code == 0, done.output
    params = load_params(repo / "params.yaml")
    assert params.vocab.composers[-1] == "Haydn"
    assert params.profile("haydn").corpora == {"haydn-quartets": None}
    assert params.profile("quick").corpora["haydn-quartets"] is None
    assert (repo / "profiles/haydn/dvc.yaml").is_file()


def test_a_rerun_adds_only_what_is_missing_and_a_different_declaration_needs_force(
    repo: Path,
) -> None:
    assert add(repo, "--composer", "Haydn").exit_code == 0
    again = add(repo, "--composer", "Haydn", "--profile", "default")
    assert again.exit_code == 0, again.output
    assert "haydn-quartets.yaml: unchanged" in again.output
    assert "added haydn-quartets to profile default" in again.output
    assert "Composer_Haydn" not in again.output  # appended by the first run only
    other = add(repo, "--composer", "Haydn", "--licence", "CC0")
    assert other.exit_code == 1 and "exists and differs (use --force" in other.output
    assert add(repo, "--composer", "Haydn", "--licence", "CC0", "--force").exit_code == 0


def test_a_failed_write_puts_back_every_file_already_written(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(repo)
    real = add_corpus.write_text_atomic

    def failing(path: Path, text: str) -> None:
        if path.name == "dvc.yaml":  # the last of the three: declaration, params.yaml, pipeline
            raise OSError(28, "No space left on device")
        real(path, text)

    monkeypatch.setattr(add_corpus, "write_text_atomic", failing)
    failed = add(repo, "--composer", "Haydn", "--profile", "haydn")
    assert failed.exit_code == 1 and "nothing was changed" in failed.output, failed.output
    assert snapshot(repo) == before
    assert not (repo / "profiles/haydn").exists()
    monkeypatch.undo()
    assert add(repo, "--composer", "Haydn", "--profile", "haydn").exit_code == 0


def test_a_profile_without_a_params_file_is_refused_before_writing(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo.parent)  # no params.yaml here, and no --params
    before = snapshot(repo)
    data = repo.parent / "data"
    result = CliRunner().invoke(main, [
        "data", "add-corpus", "haydn-quartets", "--path", str(data / "haydn"),
        "--genre", "classical", "--corpora", str(repo / "corpora"), "--data-root", str(data),
        "--profile", "haydn",
    ])  # fmt: skip
    assert result.exit_code == 1 and "params.yaml: missing" in result.output, result.output
    assert snapshot(repo) == before
