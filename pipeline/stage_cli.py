"""`gnm data meter|quantize|tokenize|shard`: the stages after verify, one folder in, one out.

Each command streams its input folder a batch of scores at a time (see `score_store`), so memory
stays flat as the corpus grows, and writes its outputs atomically. The meter stage takes only the
items that ingest, dedupe and verify accepted; every later rejection is a decision in the
stage's own `decisions.parquet`, so the ledger still accounts for every input.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.cli_common import PARAMS_OPTION, progress
from pipeline.errors import GnmError
from pipeline.io.score_store import ScoreWriter, count_scores, iter_scores
from pipeline.ledger import Decision, read_decisions, write_decisions
from pipeline.params import load_params
from pipeline.score import Score
from pipeline.stages import meter as meter_stage
from pipeline.stages import quantize as quantize_stage
from pipeline.stages import shard as shard_stage
from pipeline.stages import tokenize as tokenize_stage
from pipeline.stages.ingest import PIECES_SCHEMA


def _dir_option(name: str, default: str, help_text: str) -> Any:
    return click.option(
        f"--{name}",
        f"{name.replace('-', '_')}_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(default),
        show_default=True,
        help=help_text,
    )


def _rejected(decision_files: Iterable[Path]) -> set[str]:
    """Ids that any of these stages did not accept."""
    out: set[str] = set()
    for path in decision_files:
        if not path.is_file():
            raise GnmError(f"{path}: missing (run the stage that writes it first)")
        out.update(d.id for d in read_decisions(path) if d.kind != "accepted")
    return out


def _echo(as_json: bool, info: dict[str, Any], line: str) -> None:
    click.echo(json.dumps(info, indent=1) if as_json else line)


def _split(
    results: Iterable[tuple[dict[str, Any], Score] | Decision], decisions: list[Decision]
) -> Iterator[tuple[dict[str, Any], Score]]:
    """Pass scores on; collect decisions."""
    for result in results:
        if isinstance(result, Decision):
            decisions.append(result)
        else:
            yield result


def _with_progress(
    items: Iterator[tuple[dict[str, Any], Score]], advance: Any
) -> Iterator[tuple[dict[str, Any], Score]]:
    for item in items:
        yield item
        advance(1)


@click.command("meter")
@_dir_option("ingest", "data/ingest", "The ingest stage's output folder.")
@_dir_option("dedupe", "data/dedupe", "The dedupe stage's output folder.")
@_dir_option("verify", "data/verify", "The verify stage's output folder.")
@_dir_option("out", "data/meter", "Output folder of this stage.")
@PARAMS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def meter(
    ingest_dir: Path,
    dedupe_dir: Path,
    verify_dir: Path,
    out_dir: Path,
    params_path: str | None,
    as_json: bool,
) -> None:
    """Normalise the meters of every accepted, non-duplicate score (5/4 -> 2/4 + 3/4, ...).

    \b
    Example:
      gnm data meter --ingest data/ingest --dedupe data/dedupe --verify data/verify --out data/meter
    """
    params = load_params(params_path)
    skip = _rejected(
        [
            ingest_dir / "decisions.parquet",
            dedupe_dir / "decisions.parquet",
            verify_dir / "decisions.parquet",
        ]
    )
    v = params.verify
    fold = (v.pitch_min, v.pitch_max) if v.pitch_policy == "fold" else None
    schema = pa.schema([*PIECES_SCHEMA, *meter_stage.COLUMNS])
    decisions: list[Decision] = []
    total = count_scores(ingest_dir)
    with progress(total, "meter") as advance, ScoreWriter(out_dir, schema) as writer:
        items = (pair for pair in _with_progress(iter_scores(ingest_dir), advance))
        accepted = ((row, s) for row, s in items if row["id"] not in skip)
        for row, score in _split(meter_stage.run(accepted, params.meter, fold), decisions):
            writer.write(row, score)
    write_decisions(decisions, out_dir / "decisions.parquet")
    info = {
        "items": total,
        "skipped": len(skip),
        "normalised": writer.count,
        "quarantined": len(decisions),
    }
    _echo(
        as_json,
        info,
        f"meter: {writer.count} scores normalised ({len(skip)} not accepted earlier, "
        f"{len(decisions)} quarantined); wrote {out_dir}",
    )


@click.command("quantize")
@_dir_option("meter", "data/meter", "The meter stage's output folder.")
@_dir_option("out", "data/quantize", "Output folder of this stage.")
@PARAMS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def quantize(meter_dir: Path, out_dir: Path, params_path: str | None, as_json: bool) -> None:
    """Snap every normalised score to the grid; record per-piece error and its causes.

    \b
    Example:
      gnm data quantize --meter data/meter --out data/quantize
    """
    params = load_params(params_path)
    schema = pa.schema([*PIECES_SCHEMA, *meter_stage.COLUMNS, *quantize_stage.COLUMNS])
    moved = notes = 0
    total = count_scores(meter_dir)
    with progress(total, "quantize") as advance, ScoreWriter(out_dir, schema) as writer:
        items = _with_progress(iter_scores(meter_dir), advance)
        for row, score in quantize_stage.run(items, params.quantize):
            moved += row["notes_moved"]
            notes += len(score.notes)
            writer.write(row, score)
    write_decisions([], out_dir / "decisions.parquet")  # quantising rejects nothing
    share = moved / notes if notes else 0.0
    info = {"scores": writer.count, "notes": notes, "notes_moved": moved, "share_moved": share,
            "resolution": params.quantize.resolution}  # fmt: skip
    _echo(
        as_json,
        info,
        f"quantize: {writer.count} scores, {notes:,} notes, {moved:,} moved ({100 * share:.2f}%) "
        f"at {params.quantize.resolution} per quarter; wrote {out_dir}",
    )


@click.command("tokenize")
@_dir_option("quantize", "data/quantize", "The quantize stage's output folder.")
@_dir_option("out", "data/tokenize", "Output folder of this stage.")
@PARAMS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def tokenize(quantize_dir: Path, out_dir: Path, params_path: str | None, as_json: bool) -> None:
    """Encode every quantised score in Extended REMI: tokens.parquet, vocab.json, decisions.

    \b
    Example:
      gnm data tokenize --quantize data/quantize --out data/tokenize
    """
    from pipeline.tokenizer import Tokenizer
    from pipeline.tokenizer.vocab import Vocab

    params = load_params(params_path)
    vocab = Vocab(params.vocab)
    tokenizer = Tokenizer(vocab)
    decisions: list[Decision] = []
    rows: list[dict[str, Any]] = []
    tokens = 0
    untokened: Counter[str] = Counter()  # composer labels without a Composer token
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / ".tokens.parquet.tmp"
    total = count_scores(quantize_dir)
    with (
        progress(total, "tokenize") as advance,
        pq.ParquetWriter(tmp, tokenize_stage.TOKENS_SCHEMA, compression="zstd") as writer,
    ):
        items = _with_progress(iter_scores(quantize_dir), advance)
        for result in tokenize_stage.run_stage(items, tokenizer):
            if isinstance(result, Decision):
                decisions.append(result)
                continue
            rows.append(result)
            tokens += result["token_count"]
            if result["composer"] and result["composer_token"] == "Composer_None":
                untokened[result["composer"]] += 1
            if len(rows) >= 256:
                writer.write_table(pa.Table.from_pylist(rows, schema=tokenize_stage.TOKENS_SCHEMA))
                rows = []
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=tokenize_stage.TOKENS_SCHEMA))
    tmp.replace(out_dir / "tokens.parquet")
    vocab.save(out_dir / "vocab.json")
    write_decisions(decisions, out_dir / "decisions.parquet")
    if untokened and not as_json:
        # A label without a token is legitimate (pre-training data); say so, never silently.
        click.echo(
            "note: composers without a Composer token (encoded as Composer_None, label kept in "
            "the `composer` column; add them to vocab.composers for a token): "
            + ", ".join(f"{name} ({n})" for name, n in untokened.most_common()),
            err=True,
        )
    n = total - len(decisions)
    info = {"pieces": n, "tokens": tokens, "quarantined": len(decisions), "vocab_hash": vocab.hash}
    _echo(
        as_json,
        info,
        f"tokenize: {n} pieces, {tokens:,} tokens ({len(decisions)} quarantined); vocabulary "
        f"{len(vocab)} tokens, hash {vocab.hash[:12]}; wrote {out_dir}",
    )


@click.command("shard")
@_dir_option("tokenize", "data/tokenize", "The tokenize stage's output folder.")
@_dir_option("dedupe", "data/dedupe", "The dedupe stage's output folder (groups.parquet).")
@_dir_option("out", "data/shards", "Output folder: the shards and index.json.")
@PARAMS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the index summary as JSON.")
def shard(
    tokenize_dir: Path, dedupe_dir: Path, out_dir: Path, params_path: str | None, as_json: bool
) -> None:
    """Cut the token rows into Parquet shards with stable train/valid/test splits.

    \b
    Example:
      gnm data shard --tokenize data/tokenize --dedupe data/dedupe --out data/shards
    """
    from pipeline.tokenizer.vocab import Vocab

    params = load_params(params_path)
    tokens_path = tokenize_dir / "tokens.parquet"
    groups_path = dedupe_dir / "groups.parquet"
    for path in (tokens_path, groups_path, tokenize_dir / "vocab.json"):
        if not path.is_file():
            raise GnmError(f"{path}: missing (run the stage that writes it first)")
    vocab = Vocab.load(tokenize_dir / "vocab.json")
    table = pq.read_table(groups_path).to_pydict()
    groups = dict(zip(table["id"], table["group"], strict=True))
    works = dict(zip(table["id"], table.get("work", []), strict=False))  # older dedupe: none
    rows = pq.ParquetFile(tokens_path).metadata.num_rows
    started = time.perf_counter()
    with progress(4 * rows, "shard") as advance:  # the leak check, then one pass per split
        index = shard_stage.run(
            tokens_path, groups, params.shard, vocab, out_dir, advance,
            works=works, similarity=params.dedupe,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    splits = index["splits"]
    _echo(
        as_json,
        {"splits": splits, "shards": len(index["shards"]), "out": str(out_dir)},
        "shard: "
        + ", ".join(f"{s} {v['rows']} pieces / {v['tokens']:,} tokens" for s, v in splits.items())
        + f" in {len(index['shards'])} shards ({seconds:.1f} s); wrote {out_dir}",
    )


COMMANDS = (meter, quantize, tokenize, shard)
