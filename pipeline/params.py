"""Loading params.yaml into the stages' frozen configs (one section per stage).

The file path always comes from the caller (a CLI option); nothing here reads the environment.
A missing section means the dataclass defaults, which equal the shipped params.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import GnmError
from pipeline.stages.dedupe import DedupeConfig
from pipeline.stages.ingest import IngestConfig
from pipeline.stages.meter import MeterConfig
from pipeline.stages.quantize import QuantizeConfig
from pipeline.stages.verify import VerifyConfig
from pipeline.tokenizer.vocab import VocabConfig


class ParamsError(GnmError):
    """params.yaml is unreadable or a section is invalid."""


@dataclass(frozen=True)
class Params:
    """The parsed parameter file."""

    ingest: IngestConfig = field(default_factory=IngestConfig)
    dedupe: DedupeConfig = field(default_factory=DedupeConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    meter: MeterConfig = field(default_factory=MeterConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)

    def __post_init__(self) -> None:
        if self.quantize.resolution != self.vocab.resolution:
            raise ParamsError(
                f"quantize.resolution ({self.quantize.resolution}) must equal vocab.resolution "
                f"({self.vocab.resolution})"
            )


def load_params(path: str | Path | None) -> Params:
    """Read `path` (None: the defaults). ParamsError names the file and the bad section."""
    if path is None:
        return Params()
    path = Path(path)
    try:
        data: Any = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ParamsError(f"{path}: cannot read parameters: {exc}") from exc
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    built: dict[str, Any] = {}
    for name, factory in (
        ("ingest", lambda d: IngestConfig(**d)),
        ("dedupe", lambda d: DedupeConfig(**d)),
        ("verify", lambda d: VerifyConfig(**d)),
        ("meter", MeterConfig.from_params),
        ("quantize", lambda d: QuantizeConfig(**d)),
        ("vocab", VocabConfig.from_params),
    ):
        section = data.get(name)
        if section is None:
            continue
        if not isinstance(section, dict):
            raise ParamsError(f"{path}: section '{name}' must be a mapping")
        try:
            built[name] = factory(section)
        except (TypeError, ValueError, AssertionError) as exc:
            raise ParamsError(f"{path}: section '{name}': {exc}") from exc
    try:
        return Params(**built)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None
