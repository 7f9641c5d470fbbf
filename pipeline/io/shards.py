"""The shard format, read side: the one contract between the data and the model (`gnm_model`).

A shard folder holds Parquet files of token rows (`pipeline.stages.shard` writes them),
`vocab.json` and `index.json` (schemas/shard_index.schema.json), which lists every shard with its
split, rows, tokens and sha256. `open_shards` checks a folder and returns a `ShardSet`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from pipeline.errors import GnmError
from pipeline.io.atomic import sha256_file
from pipeline.tokenizer.vocab import Vocab

FORMAT = "gnm-shards/1"
INDEX_FILE = "index.json"
VOCAB_FILE = "vocab.json"
ROW_GROUP_ROWS = 512  # rows per Parquet row group: a reader's unit of streaming
INDEX_SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "shard_index.schema.json"


@cache
def _index_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(INDEX_SCHEMA_PATH.read_text())
    return schema


def validate_index(index: Mapping[str, Any], source: str) -> None:
    """GnmError naming the first problem when `index` does not follow the shard index schema."""
    try:
        jsonschema.validate(index, _index_schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<top>"
        raise GnmError(f"{source}: invalid shard index at {where}: {exc.message}") from None


@dataclass(frozen=True)
class ShardSet:
    """A validated shard folder: its index, its vocabulary and the paths of its files."""

    folder: Path
    index: Mapping[str, Any]
    vocab: Vocab

    def require_vocab(self, vocab: Vocab, user: str) -> None:
        """GnmError unless these shards use `vocab` (a checkpoint's, say: `user` names it)."""
        if vocab.hash == self.vocab.hash:
            return
        if vocab.resolution != self.vocab.resolution:
            raise GnmError(
                f"{self.folder}: shards at {self.vocab.resolution} ticks per quarter, {user} at "
                f"{vocab.resolution}: rebuild the shards with vocab.resolution: {vocab.resolution} "
                f"(and quantize.resolution) in params.yaml, or train at {self.vocab.resolution}"
            )
        raise GnmError(
            f"{self.folder}: shards use vocabulary {self.vocab.hash[:12]}, {user} uses "
            f"{vocab.hash[:12]} (different tokens: rebuild the shards or use a matching {user})"
        )

    def files(self, split: str | None = None) -> list[Path]:
        """Shard paths of one split (or all), in index order."""
        return [
            self.folder / s["file"]
            for s in self.index["shards"]
            if split is None or s["split"] == split
        ]


def open_shards(folder: Path, verify_hashes: bool = False) -> ShardSet:
    """Read and check a shard folder (index schema, vocabulary hash; optionally file hashes)."""
    path = folder / INDEX_FILE
    if not path.is_file():
        raise GnmError(f"{path}: missing (build the shards first: gnm data build)")
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GnmError(f"{path}: not JSON: {exc}") from None
    validate_index(index, str(path))
    vocab = Vocab.load(folder / index["vocab_file"])
    if vocab.hash != index["vocab_hash"]:
        raise GnmError(f"{path}: vocab.json hash {vocab.hash} differs from the index's")
    for shard in index["shards"]:
        file = folder / shard["file"]
        if not file.is_file():
            raise GnmError(f"{file}: listed in {path} but missing")
        if verify_hashes and sha256_file(file) != shard["sha256"]:
            raise GnmError(f"{file}: sha256 differs from {path} (a changed or partial shard)")
    return ShardSet(folder, index, vocab)
