"""The stage registry and the per-item runner (`pipeline.stages`, `pipeline.stages.base`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.stages import BY_NAME, DECIDING, SECTIONS, STAGES
from pipeline.stages.base import pieces_schema

REPO = Path(__file__).resolve().parents[1]


def _dvc_stages(path: Path) -> list[str]:
    return list(yaml.safe_load(path.read_text())["stages"])


def test_the_registry_is_dvc_yaml_s_stage_order_in_every_pipeline() -> None:
    names = [s.name for s in STAGES]
    for path in [REPO / "dvc.yaml", *sorted((REPO / "profiles").glob("*/dvc.yaml"))]:
        assert _dvc_stages(path) == names, path


def test_the_ledger_merges_the_deciding_stages_in_registry_order() -> None:
    names = [s.name for s in STAGES]
    assert list(DECIDING) == [n for n in names if BY_NAME[n].decides]
    assert DECIDING[0] == "ingest"  # the stage that lists every input comes first
    # The ledger stage reads the decisions of every deciding stage, in that order.
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["ledger"]["deps"]
    folders = [d.split("/")[-1] for d in deps if d.startswith("data/")]
    assert folders == list(DECIDING)


def test_every_per_item_stage_command_passes_exactly_its_declared_inputs() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for spec in STAGES:
        if spec.item is None:
            continue
        options = {w[2:] for w in stages[spec.name]["cmd"].split() if w.startswith("--")}
        assert options == {i.name for i in spec.inputs} | {"params", "out"}, spec.name


def test_a_per_item_stage_skips_what_every_deciding_stage_since_its_store_rejected() -> None:
    assert BY_NAME["meter"].skips == ("ingest", "dedupe", "verify")
    assert BY_NAME["verify"].skips == ()  # verify judges duplicates too
    assert set(BY_NAME["tokenize"].skips) >= {"quantize"}


def test_score_stores_carry_every_earlier_stage_s_columns() -> None:
    ingest, meter, quantize = (
        pieces_schema(n, BY_NAME).names for n in ("ingest", "meter", "quantize")
    )
    assert meter[: len(ingest)] == ingest and quantize[: len(meter)] == meter
    assert "score_json" in ingest and "notes_moved" in quantize


def test_every_params_section_of_a_stage_has_one_config_class() -> None:
    assert {"ingest", "dedupe", "verify", "meter", "quantize", "vocab", "shard"} <= set(SECTIONS)
    for spec in STAGES:
        for name, cls in spec.sections.items():
            assert SECTIONS[name] is cls, (spec.name, name)
