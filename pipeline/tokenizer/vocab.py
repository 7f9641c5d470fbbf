"""The Extended REMI vocabulary: token strings, stable ids, and the versioned JSON file.

Ids are laid out in fixed blocks so that they never move: specials, meters, positions, pitches,
durations, tempo bins, then composers *last*, so that adding a composer appends one id and keeps
every other id. Any other change (resolution, maximum duration, tempo bins, meters) is a new
vocabulary: its hash changes and a checkpoint trained on another hash refuses it.

Tempo bins default to nine metronome-like values, 40-192 quarter-note BPM, roughly equal steps in
log-tempo (about 20 %); a tempo snaps to the nearest bin in log space. The paper's code used four
bins (40/80/120/160), which puts an Adagio (66) and an Andante (92) in one bin.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pipeline.config_section import parse_section
from pipeline.errors import TokenizeError
from pipeline.io.atomic import write_text_atomic
from pipeline.music.meters import SUPPORTED_METERS
from pipeline.score import Meter

FORMAT = "gnm-extended-remi"
FORMAT_VERSION = 1
SPECIAL_TOKENS = ("PAD", "BOS", "EOS", "Bar")
DEFAULT_TEMPO_BINS = (40, 52, 66, 80, 96, 112, 132, 160, 192)
DEFAULT_COMPOSERS = ("Bach", "Beethoven", "Mozart", "Chopin")
NO_COMPOSER = "None"
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "vocab.schema.json"


@dataclass(frozen=True)
class VocabConfig:
    """What determines a vocabulary (params.yaml section `vocab`)."""

    resolution: int = 12
    meters: tuple[str, ...] = SUPPORTED_METERS
    max_duration_quarters: int = 8
    tempo_bins: tuple[int, ...] = DEFAULT_TEMPO_BINS
    composers: tuple[str, ...] = DEFAULT_COMPOSERS
    pitch_min: int = 0
    pitch_max: int = 127

    def __post_init__(self) -> None:
        if self.resolution < 2 or self.resolution % 2:
            raise ValueError(f"resolution must be an even integer >= 2, not {self.resolution}")
        for text in self.meters:
            if (Meter.parse(text).length * self.resolution).denominator != 1:
                raise ValueError(
                    f"meter {text} does not fit a grid of {self.resolution} per quarter"
                )
        if self.max_duration_quarters < 1:
            raise ValueError("max_duration_quarters must be at least 1")
        if list(self.tempo_bins) != sorted(set(self.tempo_bins)) or not self.tempo_bins:
            raise ValueError("tempo_bins must be a non-empty, strictly increasing list")
        if self.tempo_bins[0] <= 0:
            raise ValueError("tempo bins must be positive BPM values")
        if len(set(self.composers)) != len(self.composers) or NO_COMPOSER in self.composers:
            raise ValueError(f"composers must be unique and must not contain {NO_COMPOSER!r}")
        for name in self.composers:
            if not name or any(c.isspace() for c in name):
                raise ValueError(f"composer name {name!r} must be non-empty without spaces")
        if not 0 <= self.pitch_min <= self.pitch_max <= 127:
            raise ValueError("pitch range must lie within 0-127")


@dataclass(frozen=True)
class Vocab:
    """An Extended REMI vocabulary: the token list (index = id) and the config that made it."""

    config: VocabConfig
    tokens: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", tuple(_token_list(self.config)))

    # -- lookup -------------------------------------------------------------------------------
    @cached_property
    def index(self) -> dict[str, int]:
        """Token string -> id."""
        return {tok: i for i, tok in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        """The id of `token`; TokenizeError for a string not in the vocabulary."""
        try:
            return self.index[token]
        except KeyError:
            raise TokenizeError(
                f"unknown token {token!r} for vocabulary {self.hash[:12]}"
            ) from None

    @property
    def resolution(self) -> int:
        """Grid ticks per quarter note."""
        return self.config.resolution

    @cached_property
    def meters(self) -> tuple[Meter, ...]:
        """Supported meters in TS-token order."""
        return tuple(Meter.parse(m) for m in self.config.meters)

    @cached_property
    def bar_layout(self) -> dict[Meter, tuple[int, int]]:
        """Each supported meter's TS token id and grid positions (the encoder asks every bar)."""
        return {m: (self.ts_base + i, self.positions(m)) for i, m in enumerate(self.meters)}

    def positions(self, meter: Meter) -> int:
        """Grid positions in one bar of `meter` (48 for 4/4 at 12 per quarter)."""
        return int(meter.length * self.resolution)

    @property
    def max_positions(self) -> int:
        """Positions in the longest supported bar (the number of Pos tokens)."""
        return max(self.positions(m) for m in self.meters)

    @property
    def max_duration(self) -> int:
        """Longest duration token in ticks; longer notes are clipped to it."""
        return self.config.max_duration_quarters * self.resolution

    # -- id blocks (first id of each block) ---------------------------------------------------
    @cached_property
    def ts_base(self) -> int:
        return self.index[f"TS_{self.config.meters[0]}"]

    @cached_property
    def pos_base(self) -> int:
        return self.index["Pos_0"]

    @cached_property
    def pitch_base(self) -> int:
        return self.index[f"Pitch_{self.config.pitch_min}"]

    @cached_property
    def dur_base(self) -> int:
        return self.index["Dur_1"]

    @cached_property
    def tempo_base(self) -> int:
        return self.index[f"Tempo_{self.config.tempo_bins[0]}"]

    @cached_property
    def composer_base(self) -> int:
        return self.index[f"Composer_{NO_COMPOSER}"]

    def composer_id(self, composer: str | None) -> int:
        """Id of `Composer_<name>` (`Composer_None` for None); TokenizeError for an unknown name."""
        name = NO_COMPOSER if composer is None else composer
        token = f"Composer_{name}"
        if token not in self.index:
            known = ", ".join(self.config.composers)
            raise TokenizeError(f"unknown composer {name!r} (this vocabulary knows: {known}, None)")
        return self.index[token]

    def tempo_id(self, bpm: float) -> int:
        """Id of the tempo bin nearest to `bpm` in log-tempo."""
        bins = self.config.tempo_bins
        best = min(range(len(bins)), key=lambda i: abs(math.log(bins[i]) - math.log(bpm)))
        return self.tempo_base + best

    # -- the file -----------------------------------------------------------------------------
    @cached_property
    def hash(self) -> str:
        """sha256 of the canonical JSON of the config and the token list."""
        payload = json.dumps(
            {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "config": _config_json(self.config),
                "tokens": self.tokens,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """The vocabulary file's content (validated by schemas/vocab.schema.json)."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "hash": self.hash,
            "config": _config_json(self.config),
            "tokens": list(self.tokens),
        }

    def save(self, path: str | Path) -> None:
        """Write the vocabulary file atomically."""
        write_text_atomic(Path(path), json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read and check a vocabulary file: schema, hash, and that its ids are the ones we build."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise TokenizeError(f"{path}: cannot read vocabulary file: {exc}") from exc
        return cls.from_json(data, source=str(path))

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "<vocab>") -> Vocab:
        """Check and rebuild a vocabulary from its JSON content."""
        validate_vocab_json(data, source)
        vocab = cls(parse_section(VocabConfig, data["config"]))
        if list(vocab.tokens) != list(data["tokens"]):
            raise TokenizeError(
                f"{source}: token list does not match its config (file edited by hand?)"
            )
        if vocab.hash != data["hash"]:
            raise TokenizeError(
                f"{source}: hash {data['hash'][:12]} does not match content {vocab.hash[:12]}"
            )
        return vocab


def validate_vocab_json(data: Mapping[str, Any], source: str = "<vocab>") -> None:
    """Validate vocabulary JSON against schemas/vocab.schema.json; TokenizeError names the field."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path)
    )
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.path) or "(top level)"
        raise TokenizeError(f"{source}: invalid vocabulary file at {where}: {err.message}")


def _config_json(config: VocabConfig) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def _token_list(config: VocabConfig) -> list[str]:
    meters = [Meter.parse(m) for m in config.meters]
    max_pos = max(int(m.length * config.resolution) for m in meters)
    tokens: list[str] = list(SPECIAL_TOKENS)
    tokens += [f"TS_{m}" for m in config.meters]
    tokens += [f"Pos_{k}" for k in range(max_pos)]
    tokens += [f"Pitch_{p}" for p in range(config.pitch_min, config.pitch_max + 1)]
    tokens += [f"Dur_{d}" for d in range(1, config.max_duration_quarters * config.resolution + 1)]
    tokens += [f"Tempo_{b}" for b in config.tempo_bins]
    tokens += [f"Composer_{NO_COMPOSER}"]
    tokens += [f"Composer_{c}" for c in config.composers]
    return tokens


def default_vocab(composers: Sequence[str] = DEFAULT_COMPOSERS, resolution: int = 12) -> Vocab:
    """The default vocabulary (12 ticks per quarter unless asked otherwise)."""
    return Vocab(VocabConfig(resolution=resolution, composers=tuple(composers)))
