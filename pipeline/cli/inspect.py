"""`gnm data stats` and `gnm data inspect`: read a built shard folder like a user would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from pipeline.cli.common import BUILT_PROFILE_OPTION, PARAMS_OPTION
from pipeline.cli.limits import cli_limits, limit_options, run_limited
from pipeline.errors import GnmError
from pipeline.inspect_losses import header_lines, losses, piece_report
from pipeline.io.shards import ShardSet, open_shards
from pipeline.ledger import Decision
from pipeline.params import load_params
from pipeline.stages import DECIDING
from pipeline.stages import stats as stats_stage

SHARDS_OPTION = click.option(
    "--shards",
    "shards_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Shard folder (with index.json); default: data/<profile>/shards.",
)


def shards_of(profile: str, shards_dir: Path | None) -> Path:
    """The shard folder a read command uses: `--shards` when given, else the profile's."""
    return shards_dir if shards_dir is not None else Path("data") / profile / "shards"


def _table(header: list[str], rows: list[Any]) -> str:
    cells = [[f"{c:,}" if isinstance(c, int) else str(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)
    ]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    ]
    lines += [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    return "\n".join(lines)  # fmt: skip


@click.command("stats")
@SHARDS_OPTION
@BUILT_PROFILE_OPTION
@click.option(
    "--by",
    type=click.Choice(["corpus", "genre", "composer", "meter", "split"]),
    default="corpus",
    show_default=True,
    help="Group the table by this.",
)
@click.option(
    "--write",
    "write_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write stats.json and plots/*.png here (the DVC stats stage does).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full statistics as JSON.")
def stats(
    shards_dir: Path | None, profile: str, by: str, write_dir: Path | None, as_json: bool
) -> None:
    """Token statistics of the shards: pieces, bars, tokens, meters, quantisation loss.

    \b
    Example:
      gnm data stats --shards data/default/shards --by composer
      gnm data stats --by meter
      gnm data stats --json > stats.json
    """
    shards_dir = shards_of(profile, shards_dir)
    shards = open_shards(shards_dir)
    if not shards.index["shards"]:
        raise GnmError(f"{shards_dir}: the index lists no shards (every item was rejected?)")
    result = stats_stage.compute(shards)
    if write_dir is not None:
        stats_stage.write(result, write_dir)
    if as_json:
        click.echo(json.dumps(result, indent=1, sort_keys=True))
        return
    t = result["totals"]
    click.echo(
        f"{shards_dir}: {t['pieces']:,} pieces, {t['bars']:,} bars, {t['tokens']:,} tokens, "
        f"{t['notes']:,} notes; grid {result['resolution']} per quarter moved "
        f"{t['notes_moved']:,} notes ({100 * t['notes_moved'] / max(t['notes'], 1):.2f}%)"
    )
    tpb = result["tokens_per_bar"]
    click.echo(
        f"tokens per bar: mean {tpb.get('mean')}, median {tpb.get('p50')}, p99 {tpb.get('p99')}; "
        f"token types: {', '.join(f'{k} {v:,}' for k, v in result['token_types'].items())}"
    )
    for line in rejection_lines(shards_dir.parent):
        click.echo(line)
    header, rows = stats_stage.table_rows(result, by)
    click.echo(_table(header, rows))
    if write_dir is not None:
        click.echo(f"wrote {write_dir / 'stats.json'} and {write_dir / 'plots'}/*.png")


def rejection_lines(stages_dir: Path) -> list[str]:
    """What each deciding stage of the build in `stages_dir` kept out of the shards, by reason
    (one line per stage that rejected anything; none when the stage folders are elsewhere)."""
    from collections import Counter

    from pipeline.ledger import read_decisions

    lines = []
    for stage in DECIDING:
        path = stages_dir / stage / "decisions.parquet"
        if not path.is_file():
            continue
        reasons = Counter(_reason_kind(d) for d in read_decisions(path) if d.kind != "accepted")
        if reasons:
            listed = ", ".join(f"{status} {n:,}" for status, n in sorted(reasons.items()))
            lines.append(f"rejected by {stage}: {sum(reasons.values()):,} ({listed})")
    return lines


def _reason_kind(decision: Decision) -> str:
    """`duplicate`, `merged`, or the quarantine reason without its figures (`meter:7/4` ->
    `meter`, `quality:silence` kept)."""
    if decision.kind != "quarantined":
        return str(decision.kind)
    parts = decision.status.split(":")[1:]
    return ":".join(p for p in parts if not any(c.isdigit() for c in p)) or parts[0]


def ledger_trail(stages_dir: Path, item_id: str) -> list[dict[str, Any]]:
    """Every stage's decision about `item_id` (and its dedupe group), in stage order."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    trail = []
    for stage in DECIDING:
        path = stages_dir / stage / "decisions.parquet"
        if not path.is_file():
            continue
        table = pq.read_table(path)
        rows = table.filter(pc.equal(table.column("id"), item_id)).to_pylist()
        for row in rows:
            trail.append({"stage": stage, "status": row["status"], "detail": row["detail"]})
        if stage == "dedupe" and (stages_dir / stage / "groups.parquet").is_file():
            groups = pq.read_table(stages_dir / stage / "groups.parquet")
            for row in groups.filter(pc.equal(groups.column("id"), item_id)).to_pylist():
                how = f" ({row['via']} {row['containment']:.2f})" if row["via"] else ""
                trail.append(
                    {"stage": "dedupe", "status": "group", "detail": f"{row['group']}{how}"}
                )
    return trail


def find_row(shards: ShardSet, item_id: str) -> dict[str, Any] | None:
    """The shard row of `item_id`, with the shard file it lives in, or None."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for path in shards.files():
        table = pq.read_table(path, filters=[("id", "=", item_id)])
        if table.num_rows:
            row: dict[str, Any] = table.filter(pc.equal(table.column("id"), item_id)).to_pylist()[0]
            row["shard"] = path.name
            return row
    return None


# Meta fields the loss lines below say in words (JSON keeps them as numbers).
_IN_LOSS_LINES = {"notes", "source_notes", "notes_moved", "moved_tuplet", "moved_finer_value",
                  "grace_dropped", "durations_clipped"}  # fmt: skip


def _suggest(shards: ShardSet, item_id: str) -> list[str]:
    import polars as pl

    frame = pl.concat([pl.read_parquet(f, columns=["id"]) for f in shards.files()])
    hits = frame.filter(pl.col("id").str.contains(item_id, literal=True))["id"].to_list()
    return sorted(hits)[:8]


@click.command("inspect")
@click.argument("item_id")
@SHARDS_OPTION
@BUILT_PROFILE_OPTION
@click.option(
    "--stages-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The stage folders of the build (default: the shard folder's parent).",
)
@click.option(
    "--bars", "max_bars", type=int, default=8, show_default=True, help="Bars to print (0: all)."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the tokenized version (.mid, .musicxml): exactly what the model sees.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@PARAMS_OPTION
@limit_options
def inspect(
    item_id: str,
    shards_dir: Path | None,
    profile: str,
    stages_dir: Path | None,
    max_bars: int,
    output: Path | None,
    as_json: bool,
    params_path: str | None,
    timeout_s: float | None,
    memory_mb: int | None,
) -> None:
    """Show one piece: metadata, what it lost, ledger trail, and its tokens bar by bar.

    The header says what the piece lost: notes read against notes its source writes (flagged
    LOST under verify's min_source_ratio of --params), notes the grid moved, and every drop and
    change a reader or stage counted.

    With -o, decoding and writing run in an isolated child under ingest's time and memory limits
    (--timeout, --memory-mb).

    \b
    Example:
      gnm data inspect m21-bach/bach/bwv66.6.mxl
      gnm data inspect m21-mozart/mozart/k458/movement3.mxl --bars 4 -o k458.mid
    """
    shards_dir = shards_of(profile, shards_dir)
    shards = open_shards(shards_dir)
    stages_dir = stages_dir or shards_dir.parent
    trail = ledger_trail(stages_dir, item_id)
    row = find_row(shards, item_id)
    if row is None:
        if trail:
            lines = [f"{t['stage']}: {t['status']} {t['detail']}".rstrip() for t in trail]
            raise GnmError(f"{item_id}: not in the shards; ledger trail: " + "; ".join(lines))
        near = _suggest(shards, item_id)
        hint = f" (did you mean: {', '.join(near)})" if near else ""
        raise GnmError(f"{item_id}: no such piece in {shards_dir}{hint}")
    vocab = shards.vocab
    tokens = [vocab.tokens[t] for t in row["tokens"]]
    offsets = list(row["bar_offsets"])
    bars = [tokens[a:b] for a, b in zip(offsets, [*offsets[1:], len(tokens) - 1], strict=True)]
    meta_keys = ["id", "corpus", "genre", "composer", "composer_token", "title", "split", "group",
                 "shard", "reader", "bars", "notes", "source_notes", "token_count", "notes_moved",
                 "moved_tuplet", "moved_finer_value", "grace_dropped", "durations_clipped"]  # fmt: skip
    meta = {k: row[k] for k in meta_keys}
    params = load_params(params_path)
    lost = losses(row, piece_report(stages_dir, item_id), params.verify.min_source_ratio)
    if output is not None:
        from pipeline.tokenizer import Tokenizer
        from pipeline.writers import write_score

        tokenizer = Tokenizer(vocab)

        def decode_into(ids: list[int]) -> None:
            write_score(tokenizer.decode_full(ids, strict=True, score_id=item_id).score, output)

        limits = cli_limits(params, timeout_s, memory_mb)
        run_limited(decode_into, list(row["tokens"]), limits, item_id, writes=[output])
    if as_json:
        shown = bars if max_bars == 0 else bars[:max_bars]
        click.echo(
            json.dumps(
                {
                    "meta": meta,
                    "losses": lost,
                    "ledger": trail,
                    "prefix": tokens[: offsets[0] if offsets else 0],
                    "bars": shown,
                },
                indent=1,
            )
        )
        return  # fmt: skip
    for key, value in meta.items():
        if key not in _IN_LOSS_LINES:
            click.echo(f"{key:>18}: {value}")
    for label, text in header_lines(lost):
        click.echo(f"{label:>18}: {text}")
    for t in trail:
        click.echo(f"{'ledger ' + t['stage']:>18}: {t['status']} {t['detail']}".rstrip())
    click.echo(f"{'prefix':>18}: {' '.join(tokens[: offsets[0] if offsets else 0])}")
    for i, bar in enumerate(bars if max_bars == 0 else bars[:max_bars]):
        click.echo(f"{'bar ' + str(i + 1):>18}: {' '.join(bar)}")
    if max_bars and len(bars) > max_bars:
        click.echo(f"{'':>18}  ... {len(bars) - max_bars} more bars (--bars 0 shows all)")
    if output is not None:
        click.echo(f"wrote {output}")


COMMANDS = (stats, inspect)
