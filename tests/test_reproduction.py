"""`bench/reproduction.py`: every row of the reproduction table from one evaluation."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.tokenizer.vocab import DEFAULT_COMPOSERS
from tests.helpers import REPO


def _module() -> Any:
    spec = importlib.util.spec_from_file_location("reproduction", REPO / "bench/reproduction.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_row_counts_its_composers_samples_classifier_hits_overlaps_and_near_copies() -> None:
    bench = _module()

    def sample(composer: str, predicted: str, repetition: float, bars: int) -> dict[str, Any]:
        return {"composer": composer, "predicted": predicted, "metrics": {"ngram_repetition_rate": repetition},
                "memorisation": {"longest_bar_run": bars}}  # fmt: skip

    report = {
        "samples": [sample("Bach", "Bach", 0.2, 5), sample("Bach", "Mozart", 0.4, 2),
                    sample("Mozart", "Mozart", 0.1, 4), {"composer": "Mozart", "metrics": {}}],
        "metric_table": [{"group": "Bach", "metric": "scale_consistency", "overlap": 0.5},
                         {"group": "Mozart", "metric": "scale_consistency", "overlap": 0.7},
                         {"group": "Bach", "metric": "structure_short", "overlap": 0.25}],
    }  # fmt: skip
    row = bench.summarise(report, ["Bach", "Mozart"])
    bach, mozart = row["per_composer"]["Bach"], row["per_composer"]["Mozart"]
    assert (bach["samples"], bach["classifier_accuracy"], bach["near_copies"]) == (2, 0.5, 1)
    assert (mozart["samples"], mozart["classifier_accuracy"], mozart["near_copies"]) == (1, 1.0, 0)
    assert bach["ngram_repetition_rate"] == pytest.approx(0.3)
    assert bach["oa"]["scale_consistency"] == 0.5 and math.isnan(mozart["oa"]["structure_short"])
    mean = row["mean"]
    assert mean["classifier_accuracy"] == 0.75 and mean["oa"]["scale_consistency"] == 0.6
    assert mean["oa"]["structure_short"] == 0.25  # NaN left out of the mean
    assert (mean["longest_shared_bars"], mean["near_copies"]) == (5, 1)
    assert bench.finite({"a": [math.nan, 1.0]}) == {"a": [None, 1.0]}
    assert bench.slug("GnM (full fine-tune)") == "gnm-full-fine-tune"


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
        "Real (valid-split segments)",
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
    real = table["rows"]["Real (valid-split segments)"]
    assert real["per_composer"]["Bach"]["samples"] >= 1
    assert table["rows"]["Backbone (Composer_None) vs folk"]["samples"] == 2
    again = _bench(quick_shards, tiny_release["model"], tmp_path)
    assert "tiny: kept from" in again.stdout
    assert json.loads((tmp_path / "table.json").read_text())["rows"]["tiny"] == row


def test_the_markdown_table_has_a_line_per_row_and_composer_and_the_folk_sentence() -> None:
    bench = _module()
    per = {"classifier_accuracy": 0.5, "oa": {"scale_consistency": 0.61}, "ngram_repetition_rate": 0.2,
           "longest_shared_bars": 3, "near_copies": 0}  # fmt: skip
    result = {"rows": {
        "GnM": {"per_composer": {"Bach": per}, "mean": {**per, "valid_loss": 1.5}, "valid_loss": {"Bach": 1.5}},
        "Folk": {"samples": 32, "compared_with": "genre folk", "oa": {"pitch_class_entropy": 0.7,
                 "groove_consistency": 0.8, "scale_consistency": 0.9}, "ngram_repetition_rate": 0.1,
                 "real_ngram_repetition_rate": 0.2},
    }}  # fmt: skip
    lines = bench.markdown(result).splitlines()
    assert lines[2] == "| GnM | Bach | 1.500 | 0.50 | – | – | 0.61 | –/–/– | 0.20 | 3 | 0 |"
    assert lines[3].startswith("| GnM | mean | 1.500 |") and lines[1].count("---") == 11
    assert lines[-1].startswith("Folk: 32 samples against genre folk: OA pitch-class entropy 0.70")
