"""The data stages and `STAGES`, their one ordered registry (DVC's stage order in dvc.yaml).

The ledger merges decisions in `DECIDING` order, the CLI generates a command per per-item stage
from it, params.yaml sections map to config classes through `SECTIONS`, and the tests compare it
with dvc.yaml. Adding a stage: its module (a `SPEC` and, per item, an `ItemStage`), one line
below, its params.yaml section and its dvc.yaml block.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from pipeline.stages import (
    dedupe,
    ingest,
    meter,
    quality,
    quantize,
    shard,
    stats,
    tokenize,
    verify,
)
from pipeline.stages.base import Input, Stage, stage_input

LEDGER = Stage(
    "ledger",
    inputs=(Input("stages-dir", "data", "Folder holding one output folder per stage."),),
    out="reports",
)


def link(stages: Iterable[Stage]) -> tuple[Stage, ...]:
    """The stages in order, each per-item stage given the deciding stages whose rejections it
    skips (from the writer of the store it reads to itself) as inputs and `skips`."""
    out: list[Stage] = []
    for spec in stages:
        if spec.item is not None and spec.skip_rejected:
            names = [s.name for s in out]
            store = spec.inputs[0].name
            skips = tuple(s.name for s in out[names.index(store) :] if s.decides)
            listed = {i.name for i in spec.inputs}
            extra = tuple(stage_input(name) for name in skips if name not in listed)
            spec = dataclasses.replace(spec, inputs=(*spec.inputs, *extra), skips=skips)
        out.append(spec)
    return tuple(out)


STAGES: tuple[Stage, ...] = link(
    (
        ingest.SPEC,
        dedupe.SPEC,
        verify.SPEC,
        meter.SPEC,
        quantize.SPEC,
        quality.SPEC,
        tokenize.SPEC,
        shard.SPEC,
        stats.SPEC,
        LEDGER,
    )
)
BY_NAME: Mapping[str, Stage] = {s.name: s for s in STAGES}
# The stages that decide about items, in the order the ledger applies their decisions.
DECIDING: tuple[str, ...] = tuple(s.name for s in STAGES if s.decides)


def _sections() -> dict[str, type]:
    out: dict[str, type] = {}
    for stage in STAGES:  # in pipeline order, as params.yaml writes them
        for name, cls in stage.sections.items():
            out.setdefault(name, cls)
    return out


# params.yaml section -> config class, for the generic section loader (`pipeline.params`; the
# first stage naming a section owns it).
SECTIONS: Mapping[str, type] = _sections()
