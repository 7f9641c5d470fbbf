"""`gnm data verify|meter|quantize|tokenize|…`: one command per per-item stage, generated from
`STAGES`, and `gnm data shard`.

A generated command has an option per input of its stage (`--<input>`, default `data/<input>`),
`--out`, `--params`, `--json`, and `--scheduler`/`--workers` for the executor; its body loads the
stage's params.yaml sections, runs `stages.base.run_item_stage` under a progress bar and prints
the stage's summary.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import click

from pipeline.cli.common import PARAMS_OPTION, progress
from pipeline.cli.sources import WORKERS_OPTION
from pipeline.executor import map_partitioned
from pipeline.io.score_store import count_scores
from pipeline.params import load_params
from pipeline.stages import BY_NAME, STAGES
from pipeline.stages import shard as shard_stage
from pipeline.stages.base import Stage, pieces_schema, run_item_stage

# Where a per-item stage runs without --scheduler or $DASK_SCHEDULER_ADDRESS (see `bench`: on
# a few cores the transforms are cheaper than shipping scores to worker processes).
DEFAULT_SCHEDULER = "inline"
SCHEDULER_OPTION = click.option(
    "--scheduler",
    default=None,
    help="Dask scheduler address (tcp://host:port), 'local' for a local cluster, or 'inline'; "
    f"default $DASK_SCHEDULER_ADDRESS, else {DEFAULT_SCHEDULER}.",
)


def _dir_option(name: str, default: str, help_text: str) -> Any:
    return click.option(
        f"--{name}",
        f"{name.replace('-', '_')}_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(default),
        show_default=True,
        help=help_text,
    )


def _echo(as_json: bool, info: dict[str, Any], line: str) -> None:
    click.echo(json.dumps(info, indent=1) if as_json else line)


def stage_configs(spec: Stage, params_path: str | None) -> dict[str, Any]:
    """The configs of the params.yaml sections `spec` reads (section name -> config)."""
    params = load_params(params_path)
    return {section: params.section(section) for section in spec.sections}


def item_command(spec: Stage) -> click.Command:
    """The command of the per-item stage `spec`."""
    assert spec.item is not None
    item_class = spec.item
    doc = (item_class.__doc__ or "").split("\n\n")[0].strip()
    example = " ".join(
        f"--{i.name} {i.default}" for i in spec.inputs if i.default.startswith("data/")
    )

    def command(
        out_dir: Path,
        params_path: str | None,
        as_json: bool,
        scheduler: str | None,
        workers: int | None,
        **dirs: Path,
    ) -> None:
        inputs = {i.name: dirs[f"{i.name.replace('-', '_')}_dir"] for i in spec.inputs}
        chosen = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or DEFAULT_SCHEDULER
        where = None if chosen == "local" else chosen  # None: map_partitioned's local cluster
        mapper = partial(map_partitioned, scheduler=where, workers=workers)
        stage = item_class(stage_configs(spec, params_path), inputs)
        schema = pieces_schema(spec.name, BY_NAME) if stage.writes == "scores" else None

        total = count_scores(inputs[spec.inputs[0].name])
        with progress(total, spec.name) as advance:
            tally = run_item_stage(spec, stage, inputs, out_dir, schema, advance, mapper)
        info, lines, notes = stage.report(tally, out_dir)
        if notes and not as_json:
            for note in notes:
                click.echo(note, err=True)
        _echo(as_json, info, "\n".join(lines))

    command.__doc__ = (
        f"{doc}\n\n\b\nExample:\n  gnm data {spec.name} {example} --out {spec.default_out}"
    )
    decorated: Callable[..., None] = command
    decorated = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")(
        decorated
    )
    decorated = PARAMS_OPTION(decorated)
    decorated = WORKERS_OPTION(decorated)
    decorated = SCHEDULER_OPTION(decorated)
    decorated = _dir_option("out", spec.default_out, "Output folder of this stage.")(decorated)
    for given in reversed(spec.inputs):
        decorated = _dir_option(given.name, given.default, given.help)(decorated)
    return click.command(spec.name)(decorated)


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
    params = load_params(params_path)
    given = shard_stage.read_inputs(tokenize_dir, dedupe_dir)
    started = time.perf_counter()
    with progress(4 * given.rows, "shard") as advance:  # the leak check, then one pass per split
        index = shard_stage.run(
            given.tokens_path, given.groups, params.shard, given.vocab, out_dir, advance,
            works=given.works, similarity=params.dedupe,
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


COMMANDS = (*(item_command(spec) for spec in STAGES if spec.item is not None), shard)
