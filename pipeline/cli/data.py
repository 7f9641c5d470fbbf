"""`gnm data ingest|dedupe|grid-report|ledger`: the whole-set stages and the ledger."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipeline.cli.common import BUILT_PROFILE_OPTION, PARAMS_OPTION, progress
from pipeline.cli.sources import (
    CACHE_OPTION,
    CORPORA_OPTION,
    CORPUS_NAMES_OPTION,
    DATA_ROOT_OPTION,
    PROFILE_OPTION,
    SCHEDULER_OPTION,
    SOURCE_PROFILE_OPTION,
    WORKERS_OPTION,
    chosen_profile,
    ingest_declared,
)
from pipeline.errors import GnmError
from pipeline.io.score_store import count_scores, iter_scores
from pipeline.ledger import (
    KINDS,
    merge,
    read_decisions,
    reader_fallbacks,
    write_ledger,
)
from pipeline.params import load_params
from pipeline.stages import DECIDING
from pipeline.stages import ingest as ingest_stage

INGEST_DIR_OPTION = click.option(
    "--ingest",
    "ingest_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/ingest"),
    show_default=True,
    help="The ingest stage's output folder.",
)


def out_option(default: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The --out option of a stage writing to `default`."""
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(default),
        show_default=True,
        help="Output folder of this stage.",
    )


def _count_ingested(ingest_dir: Path) -> int:
    """Scores in an ingest output folder, or a one-line error when it is missing."""
    if not (ingest_dir / "pieces.parquet").is_file():
        raise GnmError(f"{ingest_dir / 'pieces.parquet'}: missing (run `gnm data ingest` first)")
    return count_scores(ingest_dir)


@click.command()
@CORPORA_OPTION
@CORPUS_NAMES_OPTION
@PROFILE_OPTION
@DATA_ROOT_OPTION
@out_option("data/ingest")
@CACHE_OPTION
@click.option("--no-cache", is_flag=True, help="Parse every file again.")
@SCHEDULER_OPTION
@WORKERS_OPTION
@PARAMS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def ingest(
    corpora_dir: Path,
    names: tuple[str, ...],
    profile_name: str | None,
    data_root: str | None,
    out_dir: Path,
    cache_dir: Path,
    no_cache: bool,
    scheduler: str | None,
    workers: int | None,
    params_path: str | None,
    as_json: bool,
) -> None:
    """Parse every declared file into canonical scores; every input gets a decision.

    Unchanged files come from the cache (content hash + reader version), so a second run is
    near-instant and adding a corpus parses only its files.

    \b
    Example:
      gnm data ingest --corpus m21-bach --corpus m21-mozart --out data/ingest
      gnm data ingest --profile quick --out data/quick/ingest
      gnm data ingest --scheduler tcp://127.0.0.1:8786
    """
    params = load_params(params_path)
    started = time.perf_counter()
    files, result = ingest_declared(
        corpora_dir,
        names,
        data_root,
        params,
        None if no_cache else cache_dir,
        scheduler,
        workers,
        "ingest: reading",
        chosen_profile(params, profile_name, params_path) if profile_name else None,
    )
    with result, progress(len(files), "ingest: writing") as advance:
        decisions = ingest_stage.write_outputs(result, out_dir, on_file=advance)
    seconds = time.perf_counter() - started
    ledger = merge([decisions])
    summary: dict[str, Any] = {
        "files": len(files),
        "items": len(ledger),
        "parsed": result.parsed,
        "from_cache": result.cached,
        "unread": result.unread,
        "parser_warnings": result.warnings.as_dict(),
        "seconds": round(seconds, 2),
        "out": str(out_dir),
    }
    from pipeline.ledger import summary as ledger_summary

    summary.update({k: v for k, v in ledger_summary(ledger).items() if k != "adds_up"})
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    click.echo(
        f"ingest: {summary['files']} files -> {summary['items']} items "
        f"({summary['accepted']} read, {summary['quarantined']} quarantined"
        + (f", {summary['merged']} voices merged" if summary["merged"] else "")
        + f") in {seconds:.1f} s; "
        f"{result.parsed} parsed, {result.cached} from cache"
        + (f", {result.unread} unread" if result.unread else "")
        + f"; wrote {out_dir}"
    )
    for reason, count in summary["quarantine_reasons"].items():
        click.echo(f"  quarantined:{reason}: {count}")
    for what, count in summary["reader_fallbacks"].items():
        click.echo(f"  reader_fallback:{what}: {count}")
    if warned := result.warnings.line():  # each item's count is in its ledger detail
        click.echo(f"  {warned}")


@click.command()
@INGEST_DIR_OPTION
@out_option("data/dedupe")
@PARAMS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def dedupe(ingest_dir: Path, out_dir: Path, params_path: str | None, as_json: bool) -> None:
    """Group exact, musically identical and near-duplicate items; keep one per group.

    Writes decisions.parquet (the duplicates), groups.parquet (item -> group, for stable splits)
    and matches.parquet (every pair found, with how and how strongly).

    \b
    Example:
      gnm data dedupe --ingest data/ingest --out data/dedupe
    """
    from collections import Counter

    from pipeline.stages import dedupe as dedupe_stage

    params = load_params(params_path)
    total = _count_ingested(ingest_dir)
    with progress(total, "dedupe") as advance:
        decisions, groups, matches = dedupe_stage.run_items(
            iter_scores(ingest_dir), params.dedupe, advance
        )
    dedupe_stage.write_outputs(decisions, groups, matches, out_dir)
    via = Counter(m.via for m in matches)
    info: dict[str, Any] = {
        "items": total,
        "duplicates": len(decisions),
        "groups": len({g["group"] for g in groups}),
        "pairs_by_kind": dict(sorted(via.items())),
        "out": str(out_dir),
    }
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    click.echo(
        f"dedupe: {info['items']} items in {info['groups']} groups, {info['duplicates']} duplicates "
        f"(pairs: {', '.join(f'{k} {v}' for k, v in info['pairs_by_kind'].items()) or 'none'}); wrote {out_dir}"
    )


@click.command("grid-report")
@CORPORA_OPTION
@CORPUS_NAMES_OPTION
@SOURCE_PROFILE_OPTION
@click.option(
    "--resolutions",
    default="12,24,48",
    show_default=True,
    help="Ticks per quarter, comma-separated.",
)
@DATA_ROOT_OPTION
@CACHE_OPTION
@SCHEDULER_OPTION
@WORKERS_OPTION
@PARAMS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def grid_report(
    corpora_dir: Path,
    names: tuple[str, ...],
    profile_name: str,
    resolutions: str,
    data_root: str | None,
    cache_dir: Path,
    scheduler: str | None,
    workers: int | None,
    params_path: str | None,
    as_json: bool,
) -> None:
    """Share of note onsets off each candidate grid, per corpus and composer, without building shards.

    Reads the corpora of a profile (or those named with --corpus) through the ingest cache
    (parsing only what is not cached yet).

    \b
    Example:
      gnm data grid-report --corpus m21-bach --corpus asap --resolutions 12,24,48
      gnm data grid-report --profile full
    """
    from pipeline.stages.grid import grid_report as measure

    try:
        grids = [int(r) for r in resolutions.split(",") if r.strip()]
    except ValueError:
        raise click.BadParameter(
            f"not a list of integers: {resolutions!r}", param_hint="--resolutions"
        ) from None
    if not grids or any(r < 1 for r in grids):
        raise click.BadParameter(
            "give positive integers, e.g. 12,24,48", param_hint="--resolutions"
        )
    params = load_params(params_path)
    started = time.perf_counter()
    files, result = ingest_declared(
        corpora_dir, names, data_root, params, cache_dir, scheduler, workers, "reading",
        None if names else chosen_profile(params, profile_name, params_path),
    )  # fmt: skip
    with result, progress(len(files), "measuring") as advance:
        tallies = measure(result.scores(advance), grids)
    seconds = time.perf_counter() - started
    report = {
        group: {name: {"notes": t.notes, "off_grid_share": {str(r): round(v, 6) for r, v in t.shares().items()}}
                for name, t in sorted(by.items())}
        for group, by in tallies.items()
    }  # fmt: skip
    if as_json:
        click.echo(
            json.dumps({"resolutions": grids, "seconds": round(seconds, 1), **report}, indent=1)
        )
        return
    header = "  ".join(f"{r:>7}/q" for r in grids)
    for group in ("corpus", "composer", "all"):
        click.echo(f"{group:<24} {'notes':>9}  {header}")
        for name, t in sorted(tallies[group].items()):
            cells = "  ".join(f"{100 * share:>8.2f}%" for share in t.shares().values())
            click.echo(f"  {name:<22} {t.notes:>9,}  {cells}")
    click.echo(f"share of note onsets off each grid; {len(files)} files in {seconds:.1f} s")


@click.command()
@BUILT_PROFILE_OPTION
@click.option(
    "--stages-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder holding one output folder per stage (ingest/, dedupe/, ..., tokenize/); "
    "default: data/<profile>.",
)
@click.option(
    "--reports",
    "reports_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the ledger is written; default: reports/<profile>.",
)
@click.option(
    "--status",
    "status_filter",
    type=click.Choice(KINDS),
    default=None,
    help="List the items with this status instead of the summary.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ledger(
    profile: str,
    stages_dir: Path | None,
    reports_dir: Path | None,
    status_filter: str | None,
    as_json: bool,
) -> None:
    """Merge a build's decisions into its ledger (reports/<profile>/ledger.parquet + ledger.json)
    and show it.

    \b
    Example:
      gnm data ledger
      gnm data ledger --profile full --status quarantined --json
    """
    stages_dir = stages_dir if stages_dir is not None else Path("data") / profile
    reports_dir = reports_dir if reports_dir is not None else Path("reports") / profile
    stages = [stage for stage in DECIDING if (stages_dir / stage / "decisions.parquet").is_file()]
    if "ingest" not in stages:
        raise GnmError(
            f"{stages_dir / 'ingest' / 'decisions.parquet'}: missing (run `gnm data ingest` first)"
        )
    decided = [read_decisions(stages_dir / stage / "decisions.parquet") for stage in stages]
    final = merge(decided)
    # Fallbacks from ingest's own decisions: a later stage's rejection replaces their detail.
    info = write_ledger(
        final, reports_dir, {"stages": stages, "reader_fallbacks": reader_fallbacks(decided[0])}
    )
    if status_filter:
        rows = [d for d in final if d.kind == status_filter]
        if as_json:
            click.echo(json.dumps([d.__dict__ for d in rows], indent=1))
        else:
            for d in rows:
                click.echo(f"{d.id}\t{d.status}\t{d.stage}\t{d.detail}")
        return
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    click.echo(
        f"ledger ({', '.join(stages)}): {info['items']} items = "
        + " + ".join(f"{info[kind]} {kind}" for kind in KINDS)
        + ("" if info["adds_up"] else "  (DOES NOT ADD UP)")
    )
    width = max((len(c) for c in info["by_corpus"]), default=6)
    click.echo(f"  {'corpus':<{width}}  " + "  ".join(KINDS))
    for corpus, counts in info["by_corpus"].items():
        cells = "  ".join(f"{counts[kind]:>{len(kind)}}" for kind in KINDS)
        click.echo(f"  {corpus:<{width}}  {cells}")
    for reason, count in info["quarantine_reasons"].items():
        click.echo(f"  quarantined:{reason}: {count}")
    for what, count in info["reader_fallbacks"].items():
        click.echo(f"  reader_fallback:{what}: {count}")


COMMANDS = (ingest, dedupe, grid_report, ledger)
