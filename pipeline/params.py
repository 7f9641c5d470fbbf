"""Loading params.yaml into the stages' frozen configs (one section per stage).

The file path always comes from the caller (a CLI option); nothing here reads the environment.
A missing section means the dataclass defaults, which equal the shipped params.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.config_section import parse_section, parsed_by, set_by
from pipeline.config_yaml import load_config, parse_config
from pipeline.errors import GnmError
from pipeline.music.meter import MeterConfig
from pipeline.music.quantize import QuantizeConfig
from pipeline.stages import SECTIONS
from pipeline.stages.dedupe import DedupeConfig
from pipeline.stages.ingest import IngestConfig
from pipeline.stages.shard import ShardConfig
from pipeline.stages.verify import VerifyConfig
from pipeline.tokenizer.vocab import VocabConfig


class ParamsError(GnmError):
    """params.yaml is unreadable or a section is invalid."""


# A profile names folders (data/<name>/, reports/<name>/, profiles/<name>/) and a DVC param path.
PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def _corpora(raw: object) -> dict[str, Any]:
    """The `corpora` and `everything` fields of a profile's `corpora` key: `all`, a list of
    declaration names, or a mapping of names to a positive file count (or null)."""
    if raw == "all":
        return {"corpora": {}, "everything": True}
    if isinstance(raw, list) and all(isinstance(c, str) for c in raw):
        return {"corpora": dict.fromkeys(raw)}
    if isinstance(raw, dict) and all(
        v is None or (isinstance(v, int) and not isinstance(v, bool) and v > 0)
        for v in raw.values()
    ):
        return {"corpora": dict(raw)}
    raise ValueError(
        "corpora must be `all`, a list of declaration names, or a mapping of names to a "
        "positive file count (or null)"
    )


@dataclass(frozen=True)
class Profile:
    """A named selection of corpora to build: all declared, or named ones with optional file caps.

    `corpora` maps a declaration name to the number of its files to take (the first ones in
    sorted order) or None for all of them; `everything` means every declaration in the folder.
    In params.yaml (`profiles.<name>`) both are the one key `corpora`, which a profile must have.
    """

    name: str = field(metadata=set_by("the profile's own key"))
    corpora: Mapping[str, int | None] = field(metadata=parsed_by(_corpora))
    everything: bool = field(default=False, metadata=set_by("corpora"))
    description: str = field(default="", compare=False)  # what it is for; not part of a build

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not PROFILE_NAME.fullmatch(self.name):
            raise ValueError(
                "a profile name is a folder name (data/<name>/, profiles/<name>/): lower-case "
                "letters, digits, '-' and '_', starting with a letter or digit"
            )


DEFAULT_PROFILES: Mapping[str, Profile] = {
    "default": Profile(
        "default",
        {
            name: None
            for name in (
                "m21-bach",
                "m21-beethoven",
                "m21-mozart",
                "m21-chopin",
                "m21-classical",
                "m21-palestrina",
                "m21-trecento",
                "m21-folk",
            )
        },
        description="music21's bundled corpus, the embedded default (runs on a fresh machine)",
    ),
    "quick": Profile(
        "quick",
        {"m21-bach": 150, "m21-beethoven": 3, "m21-mozart": 3, "m21-chopin": None, "m21-folk": 1},
        description="a few hundred items for CI and demos (the first N files of each corpus)",
    ),
    "full": Profile("full", {}, True, "every declared corpus, ../shared/data included"),
}


# The sections of params.yaml and the config class each one is parsed into, in pipeline order,
# come from the stage registry (`pipeline.stages.SECTIONS`). `Params` names the sections the code
# reads as attributes; a section it does not name (a newly added stage's) is parsed all the same
# and kept in `Params.other_sections`, so adding a stage never touches this file.
ATTRIBUTE_SECTIONS = ("ingest", "dedupe", "verify", "meter", "quantize", "vocab", "shard")
PROFILES = "profiles"  # the section of named corpus selections (not a stage's config)


@dataclass(frozen=True)
class Params:
    """The parsed parameter file: a config per section of `SECTIONS`, plus the profiles."""

    ingest: IngestConfig = field(default_factory=IngestConfig)
    dedupe: DedupeConfig = field(default_factory=DedupeConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    meter: MeterConfig = field(default_factory=MeterConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)
    profiles: Mapping[str, Profile] = field(default_factory=lambda: dict(DEFAULT_PROFILES))
    # section name -> config of every section of SECTIONS without an attribute above
    other_sections: Mapping[str, Any] = field(default_factory=lambda: _other_defaults())

    def section(self, name: str) -> Any:
        """The config of params.yaml section `name` (an attribute's or another stage's)."""
        if name in ATTRIBUTE_SECTIONS:
            return getattr(self, name)
        if name not in SECTIONS:
            raise ParamsError(f"unknown section {name!r} (known: {', '.join(SECTIONS)})")
        return self.other_sections[name]

    def profile(self, name: str) -> Profile:
        """The named profile; ParamsError listing the known ones otherwise."""
        if name not in self.profiles:
            raise ParamsError(
                f"unknown profile {name!r} (params.yaml profiles: {', '.join(self.profiles)})"
            )
        return self.profiles[name]

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
    try:
        data: Any = load_config(path)
    except (OSError, yaml.YAMLError) as exc:
        raise ParamsError(f"{path}: cannot read parameters: {exc}") from exc
    return params_from_data(data, str(path))


def parse_params(text: str, source: str) -> Params:
    """The parameters in `text` (a params.yaml before it is written); errors name `source`."""
    try:
        data: Any = parse_config(text, source)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{source}: cannot read parameters: {exc}") from exc
    return params_from_data(data, source)


def params_from_data(data: Any, source: str) -> Params:
    """Build the parameters from a parsed params.yaml document; errors name `source`."""
    data = data or {}
    if not isinstance(data, dict):
        raise ParamsError(f"{source}: expected a mapping of sections at the top level")
    unknown = [str(name) for name in data if name not in SECTIONS and name != PROFILES]
    if unknown:
        raise ParamsError(
            f"{source}: unknown sections: {', '.join(sorted(unknown))} "
            f"(known: {', '.join([*SECTIONS, PROFILES])})"
        )
    built: dict[str, Any] = {}
    for name, section in data.items():
        if section is None:
            continue
        if not isinstance(section, dict):
            raise ParamsError(f"{source}: section '{name}' must be a mapping")
        try:
            built[name] = (
                _profiles(section) if name == PROFILES else parse_section(SECTIONS[name], section)
            )
        except (TypeError, ValueError, AssertionError) as exc:
            raise ParamsError(f"{source}: section '{name}': {exc}") from exc
    others = {name: built.pop(name) for name in list(built) if name in _other_names()}
    try:
        return Params(**built, other_sections={**_other_defaults(), **others})
    except ParamsError as exc:
        raise ParamsError(f"{source}: {exc}") from None


def _other_names() -> list[str]:
    return [name for name in SECTIONS if name not in ATTRIBUTE_SECTIONS]


def _other_defaults() -> dict[str, Any]:
    return {name: SECTIONS[name]() for name in _other_names()}


def _profiles(data: Mapping[str, Any]) -> dict[str, Profile]:
    out = {}
    for name, body in data.items():
        if not isinstance(body, dict):
            raise ValueError(f"profile {name!r} must be a mapping")
        try:
            out[name] = parse_section(Profile, body, name=name)
        except ValueError as exc:
            raise ValueError(f"profile {name!r}: {exc}") from None
    return out
