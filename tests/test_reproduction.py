"""`bench/reproduction.py`: every row of the reproduction table from one evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline.tokenizer.vocab import DEFAULT_COMPOSERS
from tests.helpers import REPO


def _bench(
    shards: Path, model: Path, tmp_path: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(REPO / "bench/reproduction.py"), "--shards", str(shards),
               "--row", f"tiny={model}", "--samples", "2", "--bars", "3",
               "--work", str(tmp_path / "work"), "--out", str(tmp_path / "table.json"), *extra]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_the_table_has_every_row_and_column_and_keeps_finished_rows(
    quick_shards: Path, tiny_release: dict[str, Path], tmp_path: Path
) -> None:
    _bench(quick_shards, tiny_release["model"], tmp_path, "--real", "--backbone", str(tiny_release["model"]))  # fmt: skip
    table = json.loads((tmp_path / "table.json").read_text())
    assert table["settings"]["samples"] == 2 and table["settings"]["bars"] == 3
    assert set(table["rows"]) == {
        "tiny",
        "Real (test split)",
        "Backbone (Composer_None) vs folk",
    }
    row = table["rows"]["tiny"]
    assert set(row["per_composer"]) == set(DEFAULT_COMPOSERS)
    bach = row["per_composer"]["Bach"]
    assert bach["samples"] == 2 and 0 <= bach["classifier_accuracy"] <= 1
    assert {"pitch_class_entropy", "groove_consistency", "scale_consistency"} <= set(bach["oa"])
    assert row["valid_loss"]["Bach"] > 0 and "near_copies" in row["mean"]
    samples = sorted(p.name for p in (tmp_path / "work/tiny/samples").iterdir())
    assert samples[:2] == ["Bach-000.json", "Bach-001.json"] and len(samples) == 8
    real = table["rows"]["Real (test split)"]
    assert real["per_composer"]["Bach"]["samples"] >= 1
    assert table["rows"]["Backbone (Composer_None) vs folk"]["samples"] == 2
    again = _bench(quick_shards, tiny_release["model"], tmp_path)
    assert "tiny: kept from" in again.stdout
    assert json.loads((tmp_path / "table.json").read_text())["rows"]["tiny"] == row
