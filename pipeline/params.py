"""Loading params.yaml into the stages' frozen configs (one section per stage).

The file path always comes from the caller (a CLI option); nothing here reads the environment.
A missing section means the dataclass defaults, which equal the shipped params.yaml.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.config_yaml import load_config
from pipeline.errors import GnmError
from pipeline.stages.dedupe import DedupeConfig
from pipeline.stages.ingest import IngestConfig
from pipeline.stages.meter import MeterConfig
from pipeline.stages.quantize import QuantizeConfig
from pipeline.stages.shard import ShardConfig
from pipeline.stages.verify import VerifyConfig
from pipeline.tokenizer.vocab import VocabConfig


class ParamsError(GnmError):
    """params.yaml is unreadable or a section is invalid."""


@dataclass(frozen=True)
class Profile:
    """A named selection of corpora to build: all declared, or named ones with optional file caps.

    `corpora` maps a declaration name to the number of its files to take (the first ones in
    sorted order) or None for all of them; `everything` means every declaration in the folder.
    """

    name: str
    corpora: Mapping[str, int | None] = field(default_factory=dict)
    everything: bool = False

    @classmethod
    def from_params(cls, name: str, data: Mapping[str, Any]) -> Profile:
        """Parse `profiles.<name>` (corpora: all | [names] | {name: max files or null})."""
        unknown = set(data) - {"corpora", "description"}
        if unknown:
            raise ValueError(f"unknown profile keys: {', '.join(sorted(unknown))}")
        corpora = data.get("corpora")
        if corpora == "all":
            return cls(name, {}, True)
        if isinstance(corpora, list) and all(isinstance(c, str) for c in corpora):
            return cls(name, {c: None for c in corpora})
        if isinstance(corpora, dict) and all(
            v is None or (isinstance(v, int) and v > 0) for v in corpora.values()
        ):
            return cls(name, dict(corpora))
        raise ValueError(
            "corpora must be `all`, a list of declaration names, or a mapping of names to a "
            "positive file count (or null)"
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
    ),
    "quick": Profile(
        "quick",
        {"m21-bach": 150, "m21-beethoven": 3, "m21-mozart": 3, "m21-chopin": None, "m21-folk": 1},
    ),
    "full": Profile("full", {}, True),
}


@dataclass(frozen=True)
class Params:
    """The parsed parameter file."""

    ingest: IngestConfig = field(default_factory=IngestConfig)
    dedupe: DedupeConfig = field(default_factory=DedupeConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    meter: MeterConfig = field(default_factory=MeterConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)
    profiles: Mapping[str, Profile] = field(default_factory=lambda: dict(DEFAULT_PROFILES))

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
    path = Path(path)
    try:
        data: Any = load_config(path) or {}
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
        ("shard", lambda d: ShardConfig(**d)),
        ("profiles", _profiles),
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


def _profiles(data: Mapping[str, Any]) -> dict[str, Profile]:
    out = {}
    for name, body in data.items():
        if not isinstance(body, dict):
            raise ValueError(f"profile {name!r} must be a mapping")
        try:
            out[name] = Profile.from_params(name, body)
        except ValueError as exc:
            raise ValueError(f"profile {name!r}: {exc}") from None
    return out


def append_composer(path: Path, name: str) -> bool:
    """Append `name` to `vocab.composers` in the params file at `path`; False if already there.

    Edits the one line in place (comments and layout stay) and re-reads the file to check it.
    Appending keeps every existing token id: only the new Composer token gets a new id.
    """
    params = load_params(path)
    if name in params.vocab.composers:
        return False
    text = path.read_text()
    vocab_at = re.search(r"(?m)^vocab:\s*$", text)
    line = re.compile(r"(?m)^(  composers:\s*\[)([^\]]*)(\])")
    match = line.search(text, vocab_at.end()) if vocab_at else None
    if match is None:
        raise ParamsError(f"{path}: no `composers: [...]` line under `vocab:` to append {name} to")
    inner = match.group(2).strip()
    new_inner = f"{inner}, {json.dumps(name)}" if inner else json.dumps(name)
    path.write_text(text[: match.start(2)] + new_inner + text[match.end(2) :])
    if name not in load_params(path).vocab.composers:
        raise ParamsError(f"{path}: appending {name} to vocab.composers did not take effect")
    return True


def add_to_profile(path: Path, profile: str, corpus: str) -> bool:
    """Add `corpus` to `profiles.<profile>.corpora` in the params file; False if already there.

    Works on the one `corpora:` line of the profile (a list gets the name, a mapping gets
    `name: null`, i.e. all files); a profile of `all` needs nothing.
    """
    chosen = load_params(path).profile(profile)
    if chosen.everything or corpus in chosen.corpora:
        return False
    text = path.read_text()
    head = re.search(rf"(?m)^profiles:\s*$[\s\S]*?^  {re.escape(profile)}:\s*$", text)
    line = re.compile(r"(?m)^(    corpora:\s*)([\[{])([^\]}]*)([\]}])")
    match = line.search(text, head.end()) if head else None
    if match is None:
        raise ParamsError(f"{path}: no one-line `corpora:` list or mapping in profile {profile!r}")
    entry = corpus if match.group(2) == "[" else f"{corpus}: null"
    inner = match.group(3).strip()
    new_inner = f"{inner}, {entry}" if inner else entry
    path.write_text(text[: match.start(3)] + new_inner + text[match.end(3) :])
    if corpus not in load_params(path).profile(profile).corpora:
        raise ParamsError(f"{path}: adding {corpus} to profile {profile!r} did not take effect")
    return True
