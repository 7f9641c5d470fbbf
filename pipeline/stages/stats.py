"""The stats stage: token statistics of a shard folder (polars), as JSON and PNG plots.

Everything is read from the shards, so the figures describe exactly what a trainer sees:
pieces / bars / tokens / notes per corpus, genre, composer and split; token frequencies by type
and by token; tokens per bar and per piece; bars per meter before and after normalisation; and
the quantisation loss (notes whose onset or duration moved, and why) per corpus and composer;
and `source_ratio`, the notes read against the notes their sources write (null where nothing
was counted: MIDI). Token counts are accumulated one shard at a time, so memory does not grow with the corpus.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from pipeline.io.atomic import atomic_path, write_text_atomic
from pipeline.io.shards import ShardSet
from pipeline.stages.base import Input, Stage

GROUPINGS = ("corpus", "genre", "composer", "split")
STATS_FORMAT = "gnm-stats/1"
QUANTILES = (0.5, 0.9, 0.99)


def token_type(token: str) -> str:
    """The type of a token string: its prefix before `_` (`Pitch_60` -> `Pitch`, `Bar` -> `Bar`)."""
    return token.split("_", 1)[0]


def _frame(shards: ShardSet) -> pl.DataFrame:
    """Every shard row without the token lists (small: one row per piece)."""
    columns = [
        name
        for name in pq.ParquetFile(shards.files()[0]).schema_arrow.names
        if name not in ("tokens", "bar_offsets")
    ]
    df = pl.concat([pl.read_parquet(f, columns=columns) for f in shards.files()])
    if "reader" not in df.columns:  # shards written before the fast readers
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("reader"))
    if "source_notes" not in df.columns:  # shards written before the source counts were kept
        df = df.with_columns(pl.lit(None, dtype=pl.UInt32).alias("source_notes"))
    return df


def _group_table(df: pl.DataFrame, by: str) -> list[dict[str, Any]]:
    table = (
        df.with_columns(pl.col(by).fill_null("(none)"))
        .group_by(by)
        .agg(
            pieces=pl.len(),
            bars=pl.col("bars").sum(),
            tokens=pl.col("token_count").sum(),
            notes=pl.col("notes").sum(),
            notes_moved=pl.col("notes_moved").sum(),
            onsets_moved=pl.col("onsets_moved").sum(),
            durations_moved=pl.col("durations_moved").sum(),
            moved_tuplet=pl.col("moved_tuplet").sum(),
            moved_finer_value=pl.col("moved_finer_value").sum(),
            grace_dropped=pl.col("grace_dropped").sum(),
            reader_fallbacks=pl.col("reader").str.starts_with("reader_fallback:").sum(),
            # notes read against notes written, over the pieces whose source was counted
            counted_pieces=(pl.col("source_notes") > 0).sum(),
            counted_notes=pl.col("notes").filter(pl.col("source_notes") > 0).sum(),
            source_notes=pl.col("source_notes").filter(pl.col("source_notes") > 0).sum(),
            durations_clipped=pl.col("durations_clipped").sum(),
            onset_error_sum=(pl.col("onset_error_mean_ticks") * pl.col("notes")).sum(),
        )
        .sort(by)
    )
    rows = []
    for row in table.iter_rows(named=True):
        notes = row["notes"] or 0
        row["tokens_per_bar"] = round(row["tokens"] / row["bars"], 3) if row["bars"] else 0.0
        row["share_moved"] = round(row["notes_moved"] / notes, 6) if notes else 0.0
        row["onset_error_mean_ticks"] = (
            round(row.pop("onset_error_sum") / notes, 4) if notes else 0.0
        )
        written = row.pop("source_notes") or 0
        read = row.pop("counted_notes") or 0
        # None where nothing was counted (MIDI): no ratio rather than a made-up one
        row["source_ratio"] = round(read / written, 4) if written else None
        row["name"] = row.pop(by)
        rows.append(row)
    return rows


def _distribution(values: np.ndarray, bins: int = 40) -> dict[str, Any]:
    if values.size == 0:
        return {"count": 0}
    hist, edges = np.histogram(values, bins=bins)
    return {
        "count": int(values.size),
        "mean": round(float(values.mean()), 3),
        "min": int(values.min()),
        "max": int(values.max()),
        **{f"p{int(q * 100)}": float(np.quantile(values, q)) for q in QUANTILES},
        "histogram": {"edges": [round(float(e), 3) for e in edges], "counts": hist.tolist()},
    }


def _bar_lengths(offsets: Any, token_counts: np.ndarray) -> np.ndarray:
    """Tokens in each bar (Bar token up to the next Bar, or to EOS) of one shard."""
    flat = offsets.values.to_numpy(zero_copy_only=False).astype(np.int64)
    bounds = offsets.offsets.to_numpy()
    ends = np.empty_like(flat)
    ends[:-1] = flat[1:]
    last = bounds[1:] - 1  # index of each piece's last bar in `flat`
    has_bars = bounds[1:] > bounds[:-1]
    ends[last[has_bars]] = token_counts[has_bars] - 1  # the final token is EOS
    return ends - flat


def compute(shards: ShardSet) -> dict[str, Any]:
    """The statistics of a shard folder (see the module docstring) as a JSON-able dict."""
    vocab = shards.vocab
    df = _frame(shards)
    counts = np.zeros(len(vocab), dtype=np.int64)
    bar_lengths: list[np.ndarray] = []
    for path in shards.files():
        table = pq.read_table(path, columns=["tokens", "bar_offsets", "token_count"])
        for chunk in table.column("tokens").chunks:
            values = chunk.values.to_numpy(zero_copy_only=False)
            counts += np.bincount(values, minlength=len(vocab))[: len(vocab)]
        token_counts = table.column("token_count").to_numpy().astype(np.int64)
        offsets = table.column("bar_offsets").combine_chunks()
        bar_lengths.append(_bar_lengths(offsets, token_counts))
    by_type: dict[str, int] = {}
    for token, n in zip(vocab.tokens, counts.tolist(), strict=True):
        by_type[token_type(token)] = by_type.get(token_type(token), 0) + n
    meters_after = df.select(pl.col("meters").explode()).to_series().value_counts(sort=True)
    meters_before = df.select(pl.col("source_meters").explode()).to_series().value_counts(sort=True)
    totals = {
        "pieces": df.height,
        "bars": int(df["bars"].sum()),
        "tokens": int(df["token_count"].sum()),
        "notes": int(df["notes"].sum()),
        "notes_moved": int(df["notes_moved"].sum()),
        "durations_clipped": int(df["durations_clipped"].sum()),
    }
    fallbacks = (
        df.filter(pl.col("reader").str.starts_with("reader_fallback:"))
        .group_by("reader")
        .len()
        .sort("reader")
    )
    return {
        "format": STATS_FORMAT,
        "vocab_hash": vocab.hash,
        "resolution": vocab.resolution,
        "totals": totals,
        # pieces the reference reader read because the fast one does not handle a construct
        # (pieces in the shards; the ledger counts every ingested item, rejected ones included)
        "reader_fallbacks": {
            r.removeprefix("reader_fallback:"): int(n) for r, n in fallbacks.iter_rows()
        },
        "by": {by: _group_table(df, by) for by in GROUPINGS},
        "meters": {
            "before": {r[0]: int(r[1]) for r in meters_before.iter_rows()},
            "after": {r[0]: int(r[1]) for r in meters_after.iter_rows()},
        },
        "token_types": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
        "token_counts": {
            t: int(n) for t, n in zip(vocab.tokens, counts.tolist(), strict=True) if n
        },
        "tokens_per_bar": _distribution(
            np.concatenate(bar_lengths) if bar_lengths else np.zeros(0)
        ),
        "tokens_per_piece": _distribution(df["token_count"].to_numpy()),
        "bars_per_piece": _distribution(df["bars"].to_numpy()),
    }


def write(stats: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write `stats.json` and the PNG plots into `out_dir`; return the plot paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "stats.json", json.dumps(stats, indent=1, sort_keys=True) + "\n")
    return plot(stats, out_dir / "plots")


def plot(stats: Mapping[str, Any], folder: Path) -> list[Path]:
    """Five PNG plots of `stats` (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        path = folder / name
        with atomic_path(path) as tmp:
            # A fixed date and no software tag keep the PNG bytes the same across builds.
            fig.savefig(tmp, dpi=100, metadata={"Software": None})
        plt.close(fig)
        paths.append(path)

    def hist(ax: Any, dist: Mapping[str, Any], xlabel: str) -> None:
        if not dist.get("count"):
            return
        edges = dist["histogram"]["edges"]
        ax.stairs(dist["histogram"]["counts"], edges, fill=True)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("count")

    fig, ax = plt.subplots(figsize=(7, 4))
    hist(ax, stats["tokens_per_bar"], "tokens per bar")
    ax.set_title(f"Tokens per bar (mean {stats['tokens_per_bar'].get('mean', 0)})")
    save(fig, "tokens_per_bar.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    hist(ax, stats["tokens_per_piece"], "tokens per piece")
    ax.set_title("Piece length")
    save(fig, "tokens_per_piece.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    before, after = stats["meters"]["before"], stats["meters"]["after"]
    names = sorted(set(before) | set(after), key=lambda m: -(before.get(m, 0) + after.get(m, 0)))[
        :16
    ]
    x = np.arange(len(names))
    ax.bar(x - 0.2, [before.get(m, 0) for m in names], 0.4, label="as written")
    ax.bar(x + 0.2, [after.get(m, 0) for m in names], 0.4, label="normalised")
    ax.set_xticks(x, names, rotation=45)
    ax.set_ylabel("bars")
    ax.legend()
    ax.set_title("Bars per meter")
    save(fig, "bars_per_meter.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    types = stats["token_types"]
    ax.bar(list(types), list(types.values()))
    ax.set_ylabel("tokens")
    ax.set_title("Token frequency by type")
    ax.tick_params(axis="x", rotation=45)
    save(fig, "token_types.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    rows = stats["by"]["corpus"]
    ax.barh([r["name"] for r in rows], [100 * r["share_moved"] for r in rows])
    ax.set_xlabel(f"% of notes moved by the grid ({stats['resolution']} per quarter)")
    ax.set_title("Quantisation loss per corpus")
    save(fig, "quantisation_loss.png")
    return paths


def table_rows(stats: Mapping[str, Any], by: str) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the readable table of `stats` grouped by `by` (or `meter`)."""
    if by == "meter":
        before, after = stats["meters"]["before"], stats["meters"]["after"]
        names = sorted(
            set(before) | set(after), key=lambda m: -(after.get(m, 0) or before.get(m, 0))
        )
        return ["meter", "bars as written", "bars normalised"], [
            [m, before.get(m, 0), after.get(m, 0)] for m in names
        ]
    header = [
        "name",
        "pieces",
        "bars",
        "tokens",
        "tok/bar",
        "notes",
        "moved %",
        "tuplet",
        "finer",
        "clipped",
        "fallback",
        "read/src",
    ]
    rows = [
        [r["name"], r["pieces"], r["bars"], r["tokens"], r["tokens_per_bar"], r["notes"],
         round(100 * r["share_moved"], 2), r["moved_tuplet"], r["moved_finer_value"], r["durations_clipped"],
         r["reader_fallbacks"], "-" if r.get("source_ratio") is None else r["source_ratio"]]
        for r in stats["by"][by]
    ]  # fmt: skip
    return header, rows


SPEC = Stage("stats", inputs=(Input("shards", "data/shards", "Shard folder (with index.json)."),))
