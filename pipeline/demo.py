"""The main job on the embedded default data, for now: tokenize music21 pieces and check them.

It reads a handful of bundled pieces chosen for their meters (pickups, 5/4, 7/8, 12/8, meter
changes, tuplets, grace notes), tokenizes them, decodes the tokens, checks that the round trip is
exact, and writes the tokens (JSON Lines), a MIDI file of each tokenized piece and a summary.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pipeline.cli.common import tracked
from pipeline.readers import read_scores
from pipeline.tokenizer import Tokenizer
from pipeline.tokenizer.chain import tokenize_score
from pipeline.writers import write_midi

# (music21 corpus path, ABC X: number or None, composer token)
DEMO_PIECES: tuple[tuple[str, str | None, str | None], ...] = (
    ("bach/bwv66.6.mxl", None, "Bach"),
    ("bach/bwv171.6.mxl", None, "Bach"),
    ("bach/bwv248.23-2.mxl", None, "Bach"),
    ("chopin/mazurka06-2.krn", None, "Chopin"),
    ("mozart/k458/movement3.mxl", None, "Mozart"),
    ("beethoven/opus18no1/movement2.mxl", None, "Beethoven"),
    ("essenFolksong/ballad40.abc", "203", None),
    ("essenFolksong/ballad20.abc", "100", None),
)


def run_demo(out_dir: Path) -> dict[str, Any]:
    """Tokenize DEMO_PIECES, write outputs under `out_dir`, return the summary."""
    from music21 import corpus

    tokenizer = Tokenizer()
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    lines = []
    for path, item, composer in tracked(DEMO_PIECES, "tokenizing"):
        started = time.perf_counter()
        scores = read_scores(str(corpus.getWork(path)))
        score = next(s for s in scores if item is None or s.meta.collection_item == item)
        result = tokenize_score(score, tokenizer, composer)
        decoded = tokenizer.decode(result.ids)
        expected = sorted(
            {
                (o, p, min(d, tokenizer.vocab.max_duration / tokenizer.vocab.resolution))
                for o, p, d in result.score.note_keys()
            }
        )
        exact = decoded.note_keys() == expected and decoded.meters() == result.score.meters()
        name = path.replace("/", "_").rsplit(".", 1)[0] + (f"_X{item}" if item else "")
        write_midi(decoded, out_dir / f"{name}.mid")
        lines.append(
            json.dumps(
                {
                    "id": score.meta.id,
                    "composer": composer,
                    "tokens": tokenizer.to_strings(result.ids),
                }
            )
        )
        rows.append(
            {
                "piece": path + (f" X:{item}" if item else ""),
                "meters_in": sorted(set(score.meters())),
                "meters_out": sorted(set(result.score.meters())),
                "bars": len(result.score.bars),
                "notes": len(score.notes),
                "tokens": len(result.ids),
                "share_moved": round(result.quantize_stats.share_moved, 4),
                "report": {k: v for k, v in result.report.items() if not k.endswith("_ticks")},
                "round_trip_exact": exact,
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
    (out_dir / "tokens.jsonl").write_text("\n".join(lines) + "\n")
    summary = {
        "vocab_size": len(tokenizer.vocab),
        "vocab_hash": tokenizer.vocab.hash,
        "resolution": tokenizer.vocab.resolution,
        "pieces": rows,
        "total_tokens": sum(r["tokens"] for r in rows),
        "all_round_trips_exact": all(r["round_trip_exact"] for r in rows),
        "out_dir": str(out_dir),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    """Print the demo summary as a table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Extended REMI on music21's corpus ({summary['resolution']} ticks per quarter)"
    )
    for column in ("piece", "meters in -> out", "bars", "notes", "tokens", "moved", "round trip"):
        table.add_column(
            column, justify="left" if column in ("piece", "meters in -> out") else "right"
        )
    for row in summary["pieces"]:
        table.add_row(
            row["piece"],
            f"{','.join(row['meters_in'])} -> {','.join(row['meters_out'])}",
            str(row["bars"]),
            str(row["notes"]),
            str(row["tokens"]),
            f"{100 * row['share_moved']:.1f}%",
            "exact" if row["round_trip_exact"] else "DIFFERS",
        )
    console = Console()
    console.print(table)
    console.print(
        f"vocabulary: {summary['vocab_size']} tokens (hash {summary['vocab_hash'][:12]}); "
        f"{summary['total_tokens']} tokens written to {summary['out_dir']}/tokens.jsonl with a MIDI file per piece"
    )
