"""The shard stage: tokens.parquet + dedupe groups -> Parquet token shards with stable splits.

Split: each piece's split comes from a hash of its dedupe group id (salted, the first 8 bytes of
sha256 read as a fraction of 2**64, compared with the cumulative split fractions), so every member
of a group would land in the same split and a piece keeps its split when other corpora are added.
Only one member of a group reaches the shards anyway (the others are ledgered as duplicates).
A group holds a whole work (dedupe groups declared work keys and near-duplicates), and before
writing anything the stage checks that no two rows in different splits share a work key or are
near-duplicates by their tokens (`leaks`): it refuses to write rather than leak, naming them.

Shards: rows sorted by (split, id), cut into files `<split>-<nnnnn>.parquet` of at least
`target_tokens` tokens (the last of a split may be smaller), zstd, `SHARD_SCHEMA`. Each file is
written to a temporary name and renamed; `index.json` (schemas/shard_index.schema.json) is
written last and lists every shard with its rows, tokens and sha256: it is the commit point, and
files the index does not list are removed. Same inputs, same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.errors import GnmError
from pipeline.io.atomic import (
    sha256_file,
    stale_temporaries,
    write_table_atomic,
    write_text_atomic,
)
from pipeline.io.shards import (
    FORMAT,
    INDEX_FILE,
    ROW_GROUP_ROWS,
    VOCAB_FILE,
    validate_index,
)
from pipeline.stages.base import Stage, stage_input
from pipeline.stages.dedupe import DedupeConfig
from pipeline.stages.leaks import refuse_leaks, token_rows
from pipeline.stages.tokenize import TOKENS_SCHEMA
from pipeline.tokenizer.vocab import Vocab


def _shard_schema() -> pa.Schema:
    fields = list(TOKENS_SCHEMA)
    at = TOKENS_SCHEMA.get_field_index("composer") + 1
    fields[at:at] = [
        pa.field("split", pa.string()),  # train | valid | test
        pa.field("group", pa.string()),  # dedupe group id (its canonical member)
    ]
    return pa.schema(fields)


SHARD_SCHEMA = _shard_schema()


@dataclass(frozen=True)
class ShardConfig:
    """Parameters of the shard stage (params.yaml section `shard`)."""

    target_tokens: int = 2_000_000
    splits: Mapping[str, float] = field(
        default_factory=lambda: {"train": 0.9, "valid": 0.05, "test": 0.05}
    )
    salt: str = "gnm-split-v1"

    def __post_init__(self) -> None:
        if self.target_tokens < 1:
            raise ValueError(f"target_tokens must be positive, not {self.target_tokens}")
        if set(self.splits) != {"train", "valid", "test"}:
            raise ValueError(f"splits must name train, valid and test, not {sorted(self.splits)}")
        if any(v < 0 for v in self.splits.values()) or abs(sum(self.splits.values()) - 1) > 1e-9:
            raise ValueError(f"split fractions must be >= 0 and add up to 1: {dict(self.splits)}")
        object.__setattr__(self, "splits", dict(self.splits))


SPLIT_ORDER = ("train", "valid", "test")


def split_of(group: str, cfg: ShardConfig) -> str:
    """The split of a dedupe group: a salted hash of its id against the cumulative fractions."""
    digest = hashlib.sha256(f"{cfg.salt}:{group}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for name in SPLIT_ORDER:
        edge += cfg.splits[name]
        if point < edge:
            return name
    return SPLIT_ORDER[-1]  # rounding at the very top of [0, 1)


def _batches_of_split(
    tokens_path: Path, groups: Mapping[str, str], cfg: ShardConfig, split: str
) -> Iterator[pa.Table]:
    """The rows of `tokens_path` in `split`, with split and group columns, in id order."""
    source = pq.ParquetFile(tokens_path)
    for batch in source.iter_batches(batch_size=ROW_GROUP_ROWS):
        table = pa.Table.from_batches([batch])
        ids = table.column("id").to_pylist()
        group_ids = [groups.get(i, i) for i in ids]
        splits = [split_of(g, cfg) for g in group_ids]
        at = table.schema.get_field_index("composer") + 1
        table = table.add_column(at, SHARD_SCHEMA.field("split"), pa.array(splits, pa.string()))
        table = table.add_column(
            at + 1, SHARD_SCHEMA.field("group"), pa.array(group_ids, pa.string())
        )
        table = table.filter(pc.equal(table.column("split"), split))
        if table.num_rows:
            yield table.cast(SHARD_SCHEMA)


def _write_shard(table: pa.Table, path: Path) -> dict[str, Any]:
    table = table.combine_chunks()  # the bytes must not depend on how the rows were batched
    write_table_atomic(table, path, row_group_size=ROW_GROUP_ROWS)
    return {
        "file": path.name,
        "split": table.column("split")[0].as_py(),
        "rows": table.num_rows,
        "tokens": int(pc.sum(table.column("token_count")).as_py() or 0),
        "sha256": sha256_file(path),
    }


def run(
    tokens_path: Path,
    groups: Mapping[str, str],
    cfg: ShardConfig,
    vocab: Vocab,
    out_dir: Path,
    on_rows: Callable[[int], None] | None = None,
    *,
    works: Mapping[str, str | None] | None = None,
    similarity: DedupeConfig | None = None,
) -> dict[str, Any]:
    """Write the shards, vocab.json and index.json into `out_dir`; return the index.

    `works` maps ids to their declared work keys and `similarity` is dedupe's configuration
    (its defaults when None): GnmError, before any file is written, when two rows in different
    splits would leak a work (see `leaks`). `on_rows` counts four passes over the rows.
    """
    check_leaks(tokens_path, groups, cfg, vocab, works or {}, similarity or DedupeConfig(), on_rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in stale_temporaries(out_dir):
        stale.unlink()  # left by a killed run
    shards: list[dict[str, Any]] = []
    for split in SPLIT_ORDER:
        pending: list[pa.Table] = []
        pending_tokens = 0
        for table in _batches_of_split(tokens_path, groups, cfg, split):
            for row in range(table.num_rows):
                pending.append(table.slice(row, 1))
                pending_tokens += table.column("token_count")[row].as_py()
                if pending_tokens >= cfg.target_tokens:
                    name = f"{split}-{sum(s['split'] == split for s in shards):05d}.parquet"
                    shards.append(_write_shard(pa.concat_tables(pending), out_dir / name))
                    pending, pending_tokens = [], 0
            if on_rows:
                on_rows(table.num_rows)
        if pending:
            name = f"{split}-{sum(s['split'] == split for s in shards):05d}.parquet"
            shards.append(_write_shard(pa.concat_tables(pending), out_dir / name))
    vocab.save(out_dir / VOCAB_FILE)
    index = {
        "format": FORMAT,
        "vocab_file": VOCAB_FILE,
        "vocab_hash": vocab.hash,
        "resolution": vocab.resolution,
        "split_fractions": dict(cfg.splits),
        "split_salt": cfg.salt,
        "target_tokens": cfg.target_tokens,
        "columns": [{"name": f.name, "type": str(f.type)} for f in SHARD_SCHEMA],
        "splits": {
            split: {
                "shards": sum(s["split"] == split for s in shards),
                "rows": sum(s["rows"] for s in shards if s["split"] == split),
                "tokens": sum(s["tokens"] for s in shards if s["split"] == split),
            }
            for split in SPLIT_ORDER
        },
        "shards": shards,
    }
    validate_index(index, str(out_dir / INDEX_FILE))
    write_text_atomic(out_dir / INDEX_FILE, json.dumps(index, indent=1) + "\n")
    listed = {s["file"] for s in shards}
    for path in out_dir.glob("*.parquet"):
        if path.name not in listed:
            path.unlink()  # a shard of an earlier, larger build
    return index


@dataclass(frozen=True)
class ShardInputs:
    """What the shard stage reads from the tokenize and dedupe folders."""

    tokens_path: Path
    vocab: Vocab
    groups: Mapping[str, str]  # id -> dedupe group id
    works: Mapping[str, str | None]  # id -> declared work key
    rows: int  # token rows (pieces)


def read_inputs(tokenize_dir: Path, dedupe_dir: Path) -> ShardInputs:
    """tokens.parquet, vocab.json and dedupe's groups; GnmError naming a missing file."""
    tokens_path = tokenize_dir / "tokens.parquet"
    groups_path = dedupe_dir / "groups.parquet"
    for path in (tokens_path, groups_path, tokenize_dir / VOCAB_FILE):
        if not path.is_file():
            raise GnmError(f"{path}: missing (run the stage that writes it first)")
    table = pq.read_table(groups_path).to_pydict()
    groups = dict(zip(table["id"], table["group"], strict=True))
    works = dict(zip(table["id"], table.get("work", []), strict=False))  # older dedupe: none
    rows = pq.ParquetFile(tokens_path).metadata.num_rows
    return ShardInputs(tokens_path, Vocab.load(tokenize_dir / VOCAB_FILE), groups, works, rows)


def check_leaks(
    tokens_path: Path,
    groups: Mapping[str, str],
    cfg: ShardConfig,
    vocab: Vocab,
    works: Mapping[str, str | None],
    similarity: DedupeConfig,
    on_rows: Callable[[int], None] | None = None,
) -> None:
    """GnmError naming the rows when two rows bound for different splits are one work or alike."""
    ids = pq.read_table(tokens_path, columns=["id"]).column("id").to_pylist()
    split_of_id = {i: split_of(groups.get(i, i), cfg) for i in ids}
    rows = []
    for row in token_rows(tokens_path, split_of_id, works, vocab, similarity.ngram):
        rows.append(row)
        if on_rows and len(rows) % ROW_GROUP_ROWS == 0:
            on_rows(ROW_GROUP_ROWS)
    if on_rows and len(rows) % ROW_GROUP_ROWS:
        on_rows(len(rows) % ROW_GROUP_ROWS)
    refuse_leaks(rows, similarity, str(tokens_path))


SPEC = Stage(
    "shard",
    sections={"shard": ShardConfig, "dedupe": DedupeConfig},
    inputs=(stage_input("tokenize"), stage_input("dedupe", " (groups.parquet)")),
    out="data/shards",
)
