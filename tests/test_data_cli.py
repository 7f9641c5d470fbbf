from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import main
from tests.helpers import TEST_DATA, m21_path


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def setup_corpus(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    folder = data / "mixed"
    folder.mkdir(parents=True)
    for name in ("edge_cases.musicxml", "two_tunes.abc", "truncated.mid", "no_notes.musicxml"):
        shutil.copy(TEST_DATA / name, folder / name)
    shutil.copy(m21_path("bach/bwv66.6.mxl"), folder / "bwv66.6.mxl")
    shutil.copy(m21_path("bach/bwv66.6.mxl"), folder / "copy_of_bwv66.6.mxl")
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    return data, corpora


def test_add_corpus_then_the_stages_and_a_ledger_that_adds_up(tmp_path: Path) -> None:
    data, corpora = setup_corpus(tmp_path)
    code, out, err = run("data", "add-corpus", "mixed", "--path", str(data / "mixed"), "--genre", "other",
                         "--composer", "Bach", "--corpora", str(corpora), "--data-root", str(data))  # fmt: skip
    assert code == 0, err
    assert "6 files" in out and (corpora / "mixed.yaml").exists()
    code, out, _ = run("data", "validate", "--corpora", str(corpora), "--data-root", str(data))
    assert code == 0 and "1 declarations valid" in out

    stages = tmp_path / "stages"
    common = ["--corpora", str(corpora)]
    code, out, err = run("data", "ingest", *common, "--data-root", str(data), "--out", str(stages / "ingest"),
                         "--cache", str(tmp_path / "cache"), "--scheduler", "inline", "--json")  # fmt: skip
    assert code == 0, err
    info = json.loads(out)
    assert (info["files"], info["items"], info["quarantined"]) == (6, 7, 1)
    code, out, err = run(
        "data", "dedupe", "--ingest", str(stages / "ingest"), "--out", str(stages / "dedupe")
    )
    assert code == 0 and "1 duplicates" in out, out + err
    code, out, err = run(
        "data",
        "verify",
        *common,
        "--ingest",
        str(stages / "ingest"),
        "--out",
        str(stages / "verify"),
    )
    assert code == 0 and "quarantined:no_notes: 1" in out, out + err
    code, out, err = run(
        "data",
        "ledger",
        "--stages-dir",
        str(stages),
        "--reports",
        str(tmp_path / "reports"),
        "--json",
    )
    assert code == 0, err
    ledger = json.loads(out)
    assert ledger["items"] == 7 and ledger["adds_up"]
    assert (ledger["accepted"], ledger["duplicate"], ledger["quarantined"]) == (4, 1, 2)
    assert ledger["quarantine_reasons"] == {"bad_midi": 1, "no_notes": 1}
    assert (tmp_path / "reports" / "ledger.parquet").exists()
    code, out, _ = run(
        "data",
        "ledger",
        "--stages-dir",
        str(stages),
        "--reports",
        str(tmp_path / "reports"),
        "--status",
        "duplicate",
    )
    assert (
        "duplicate_of:mixed/bwv66.6.mxl" in out or "duplicate_of:mixed/copy_of_bwv66.6.mxl" in out
    )


def test_bad_declarations_and_missing_data_root_are_one_line_errors(tmp_path: Path) -> None:
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    (corpora / "bad.yaml").write_text("name: bad\ndescription: x\nsource: {kind: directory, path: x, include: ['*']}\n"
                                      "genre: jazzish\nlicence: x\nredistributable: true\npriority: 1\n")  # fmt: skip
    code, out, err = run("data", "validate", "--corpora", str(corpora))
    assert code == 1 and "bad.yaml: field genre" in out and len(err.strip().splitlines()) == 1
    (corpora / "bad.yaml").write_text((corpora / "bad.yaml").read_text().replace("jazzish", "folk"))
    code, _, err = run(
        "data", "ingest", "--corpora", str(corpora), "--params", str(tmp_path / "p.yaml")
    )
    assert code == 2  # click: the params file does not exist
    (tmp_path / "p.yaml").write_text("ingest: {data_root: null}\n")
    code, _, err = run(
        "data",
        "ingest",
        "--corpora",
        str(corpora),
        "--params",
        str(tmp_path / "p.yaml"),
        env={"GNM_DATA_ROOT": ""},
    )
    assert code == 1 and "bad.yaml" in err and "needs a data root" in err
