"""`gnm data crosscheck`: every item read by the fast and the reference reader, compared."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from pipeline.cli.common import PARAMS_OPTION, progress
from pipeline.cli.sources import (
    CACHE_OPTION,
    CORPORA_OPTION,
    CORPUS_NAMES_OPTION,
    DATA_ROOT_OPTION,
    SCHEDULER_OPTION,
    SOURCE_PROFILE_OPTION,
    WORKERS_OPTION,
    chosen_profile,
    data_root_of,
    profile_files,
)
from pipeline.crosscheck import VERDICTS, below_target, crosscheck
from pipeline.errors import GnmError
from pipeline.io.atomic import write_text_atomic
from pipeline.params import load_params
from pipeline.tokenizer import Tokenizer, Vocab


@click.command("crosscheck")
@CORPORA_OPTION
@CORPUS_NAMES_OPTION
@SOURCE_PROFILE_OPTION
@DATA_ROOT_OPTION
@CACHE_OPTION
@click.option("--no-cache", is_flag=True, help="Parse every file again with both readers.")
@SCHEDULER_OPTION
@WORKERS_OPTION
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the full JSON report here (every item that is not identical, with its cause).")  # fmt: skip
@click.option("--min-identical", type=click.FloatRange(0, 1), default=None, help="Exit 1 when a corpus of 50+ items has a smaller identical share (e.g. 0.99).")  # fmt: skip
@PARAMS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report.")
def crosscheck_command(
    corpora_dir: Path,
    names: tuple[str, ...],
    profile_name: str,
    data_root: str | None,
    cache_dir: Path,
    no_cache: bool,
    scheduler: str | None,
    workers: int | None,
    output: Path | None,
    min_identical: float | None,
    params_path: str | None,
    as_json: bool,
) -> None:
    """Read every item with the fast reader and the reference reader (music21 / miditoolkit)
    and compare their token sequences after meter normalisation and quantisation.

    Per corpus: identical, reference_error (different only where music21 misreads the source:
    the fast reader, told to reproduce music21's known misreadings, then reads what music21
    reads), different, fast fell back (read by the reference reader), reference failed, both
    failed, fast failed. Each difference names the first differing bar and token
    and a one-line cause. Readings go through ingest's cache, so a build's parses are reused.

    \b
    Example:
      gnm data crosscheck                          # the default profile
      gnm data crosscheck --profile full -o bench/results/crosscheck.json
      gnm data crosscheck --corpus m21-folk --json
    """
    params = load_params(params_path)
    root = data_root_of(data_root, params)
    profile = chosen_profile(params, profile_name, params_path) if not names else None
    decls, files = profile_files(corpora_dir, names, profile, root)
    if not files:
        raise GnmError("no files to compare (check --corpus / --profile)")
    tokenizer = Tokenizer(Vocab(params.vocab))
    with progress(3 * len(files), "crosscheck: fast, reference, compare") as advance:
        report = crosscheck(
            files,
            {d.name: d for d in decls},
            params.ingest,
            None if no_cache else cache_dir,
            tokenizer,
            params.meter,
            scheduler=scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS"),
            workers=workers,
            on_done=advance,
        )
    if output is not None:
        write_text_atomic(output, json.dumps(report, indent=1) + "\n")
    if as_json:
        click.echo(json.dumps(report, indent=1))
    else:
        _print(report)
        if output is not None:
            click.echo(f"wrote {output}")
    if min_identical is not None:
        short = below_target(report, min_identical)
        if short:
            raise GnmError(
                f"identical share under {min_identical:g} in {', '.join(short)} "
                "(see the listed differences)"
            )


def _print(report: dict[str, object]) -> None:
    by_corpus = report["by_corpus"]
    assert isinstance(by_corpus, dict)
    width = max([len(c) for c in by_corpus] + [6])
    heads = ["items", *VERDICTS]
    click.echo(f"{'corpus':<{width}}  " + "  ".join(f"{h:>{max(len(h), 5)}}" for h in heads))
    for corpus, row in by_corpus.items():
        cells = "  ".join(f"{row[h]:>{max(len(h), 5)}}" for h in heads)
        click.echo(
            f"{corpus:<{width}}  {cells}  ({100 * row['identical_share']:.2f} % identical, "
            f"{100 * row['agreeing_share']:.2f} % counting music21's known errors)"
        )
    listed = report["not_identical"]
    assert isinstance(listed, list)
    for row in listed[:20]:
        where = f" bar {row['bar']}" if row.get("bar") is not None else ""
        click.echo(f"  {row['verdict']}: {row['id']}{where}: {row['cause']}")
    if len(listed) > 20:
        click.echo(f"  ... and {len(listed) - 20} more (use -o FILE or --json)")


COMMANDS = (crosscheck_command,)
