"""`gnm data validate|ingest|dedupe|synth|add-corpus|grid-report|ledger`: the commands over
the corpus declarations and the whole-set stages."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from pipeline.cli.common import BUILT_PROFILE_OPTION, PARAMS_OPTION, progress
from pipeline.corpora import (
    CorpusDecl,
    SourceFile,
    load_declarations,
    resolve_data_root,
    validate_folder,
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
from pipeline.params import Params, Profile, load_params
from pipeline.stages import DECIDING
from pipeline.stages import ingest as ingest_stage

CORPORA_OPTION = click.option(
    "--corpora",
    "corpora_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("corpora"),
    show_default=True,
    help="Folder of corpus declarations (*.yaml).",
)
DATA_ROOT_OPTION = click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    help="Root of the data sets that directory corpora name; default $GNM_DATA_ROOT, then params.",
)

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


def _data_root(option: str | None, params: Params) -> Path | None:
    # The CLI is the one place that reads the environment (STYLE.md: config flows one way).
    return resolve_data_root(option, os.environ.get("GNM_DATA_ROOT"), params.ingest.data_root)


@click.command()
@CORPORA_OPTION
@DATA_ROOT_OPTION
@PARAMS_OPTION
def validate(corpora_dir: Path, data_root: str | None, params_path: str | None) -> None:
    """Check every corpus declaration: one line per problem, exit 1 if any.

    \b
    Example:
      gnm data validate --corpora corpora --data-root ../shared/data
    """
    params = load_params(params_path)
    root = _data_root(data_root, params)
    if not corpora_dir.is_dir():
        raise GnmError(f"{corpora_dir}: corpus declaration folder does not exist")
    problems = validate_folder(corpora_dir, root)
    for line in problems:
        click.echo(line)
    n = len(list(corpora_dir.glob("*.yaml")))
    if problems:
        raise GnmError(f"{len(problems)} of {n} declarations have problems")
    click.echo(f"{n} declarations valid" + (f" (data root {root})" if root else ""))


def select_corpora(corpora_dir: Path, names: Sequence[str]) -> list[CorpusDecl]:
    """The declarations to build: all, or those named."""
    return load_declarations(corpora_dir, names or None)


def profile_files(
    corpora_dir: Path, names: Sequence[str], profile: Profile | None, root: Path | None
) -> tuple[list[CorpusDecl], list[SourceFile]]:
    """The declarations and files to read: `--corpus` names win, else the profile's selection."""
    if names or profile is None or profile.everything:
        decls = select_corpora(corpora_dir, names)
        return decls, [f for d in decls for f in d.files(root)]
    decls = select_corpora(corpora_dir, list(profile.corpora))
    files = []
    for decl in decls:
        cap = profile.corpora[decl.name]
        files.extend(decl.files(root)[:cap])  # files() is sorted: the first `cap` are stable
    return decls, files


PROFILE_OPTION = click.option(
    "--profile",
    "profile_name",
    default=None,
    help="Read the corpora of this params.yaml profile (default, quick, full or one you added; "
    "default: every declaration in --corpora); --corpus wins.",
)
# The commands that read sources, not a build, but compare or measure what a build would read.
SOURCE_PROFILE_OPTION = click.option(
    "--profile",
    "profile_name",
    default="default",
    show_default=True,
    help="Read the corpora of this params.yaml profile (default, quick, full or one you added) "
    "from their sources, not its build; --corpus wins.",
)


def chosen_profile(params: Params, name: str, params_path: str | None) -> Profile:
    """The named profile; without --params only the built-in profiles exist, and the error says so."""
    if params_path is None and name not in params.profiles:
        raise GnmError(
            f"unknown profile {name!r}: without --params only the built-in profiles exist "
            f"({', '.join(params.profiles)}); give --params params.yaml for the ones you added"
        )
    return params.profile(name)


CORPUS_NAMES_OPTION = click.option(
    "--corpus", "names", multiple=True, help="Only this corpus (repeatable)."
)
CACHE_OPTION = click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".cache/gnm"),
    show_default=True,
    help="Per-file parse cache (content hash + reader version).",
)
SCHEDULER_OPTION = click.option(
    "--scheduler",
    default=None,
    help="Dask scheduler address (tcp://host:port), or 'inline'; default $DASK_SCHEDULER_ADDRESS, else a local cluster.",
)
WORKERS_OPTION = click.option(
    "--workers", type=int, default=None, help="Local cluster worker processes (default: cores)."
)


def _ingest_declared(
    corpora_dir: Path,
    names: Sequence[str],
    data_root: str | None,
    params: Params,
    cache_dir: Path | None,
    scheduler: str | None,
    workers: int | None,
    label: str,
    profile: Profile | None = None,
) -> tuple[list[Any], ingest_stage.IngestResult]:
    """Run the ingest stage over the declared corpora (a profile's, `names`, or all) with a progress bar."""
    root = _data_root(data_root, params)
    decls, files = profile_files(corpora_dir, names, profile, root)
    with progress(len(files), label) as advance:
        result = ingest_stage.run(
            files,
            {d.name: d for d in decls},
            params.ingest,
            cache_dir,
            scheduler=scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS"),
            workers=workers,
            on_done=advance,
        )
    return files, result


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
    files, result = _ingest_declared(
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

    import pyarrow as pa

    from pipeline.io.atomic import write_table_atomic
    from pipeline.ledger import write_decisions
    from pipeline.stages import dedupe as dedupe_stage

    params = load_params(params_path)
    total = _count_ingested(ingest_dir)
    with progress(total, "dedupe") as advance:
        decisions, groups, matches = dedupe_stage.run_items(
            iter_scores(ingest_dir), params.dedupe, advance
        )
    write_decisions(decisions, out_dir / "decisions.parquet")
    dedupe_stage.write_groups(groups, out_dir / "groups.parquet")
    write_table_atomic(
        pa.Table.from_pylist(
            [m.__dict__ for m in matches] or [], schema=dedupe_stage.MATCHES_SCHEMA
        ),
        out_dir / "matches.parquet",
    )
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


@click.command()
@click.option("--pieces", type=click.IntRange(min=1), required=True, help="How many scores.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write, under the data root (e.g. $GNM_DATA_ROOT/synthetic).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@DATA_ROOT_OPTION
@PARAMS_OPTION
def synth(
    pieces: int, out_dir: Path, seed: int, data_root: str | None, params_path: str | None
) -> None:
    """Write a synthetic MIDI corpus for load tests: distinct generated scores, not copies.

    Piece i of a seed is always the same file, so a larger corpus extends a smaller one (a
    folder holds one seed; another is refused). Save the printed YAML as corpora/<name>.yaml
    to run it through the build.

    \b
    Example:
      gnm data synth --pieces 137080 --out "$GNM_DATA_ROOT/synthetic"
    """
    from pipeline import synthetic

    root = _data_root(data_root, load_params(params_path))
    try:  # checked before writing: a declaration can only name a folder under the data root
        folder = out_dir.resolve().relative_to(root.resolve()) if root else None
    except ValueError:
        folder = None
    if folder is None:
        raise GnmError(
            f"{out_dir} is not under the data root ({root}): a declaration cannot name it; "
            "write it there or pass --data-root"
        )
    started = time.perf_counter()
    with progress(pieces, "synth") as advance:
        synthetic.write_corpus(out_dir, pieces, seed, on_done=advance)
    click.echo(f"synth: {pieces} scores under {out_dir} in {time.perf_counter() - started:.1f} s")
    click.echo(f"a declaration for it (corpora/synthetic.yaml), data root {root}:")
    click.echo(synthetic.declaration("synthetic", folder.as_posix()), nl=False)


@click.command("add-corpus")
@click.argument("name")
@click.option(
    "--path",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="Folder of score files, inside the data root.",
)
@click.option(
    "--genre",
    type=click.Choice(["classical", "folk", "pop", "popular-song", "other"]),
    required=True,
)
@click.option(
    "--composer",
    default=None,
    help="Composer of every file (one word, e.g. Haydn); appended to vocab.composers in params.yaml.",
)
@click.option("--licence", default="unspecified", show_default=True)
@click.option("--redistributable", is_flag=True, help="The licence allows redistribution.")
@click.option(
    "--priority", type=int, default=50, show_default=True, help="Dedupe priority (higher wins)."
)
@click.option("--description", default=None)
@CORPORA_OPTION
@DATA_ROOT_OPTION
@PARAMS_OPTION
@click.option("--force", is_flag=True, help="Overwrite an existing declaration.")
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    help="Also add the corpus to this params.yaml profile (repeatable), e.g. default; a profile "
    "params.yaml lacks is created with this corpus, with its profiles/<name>/dvc.yaml.",
)
@click.option(
    "--profile-description",
    default=None,
    help="Description of a profile --profile creates (default: a line naming this corpus).",
)
def add_corpus(
    name: str,
    folder: Path,
    genre: str,
    composer: str | None,
    licence: str,
    redistributable: bool,
    priority: int,
    description: str | None,
    corpora_dir: Path,
    data_root: str | None,
    params_path: str | None,
    force: bool,
    profiles: tuple[str, ...],
    profile_description: str | None,
) -> None:
    """Write a validated declaration for a folder of scores under the data root.

    All or nothing: the declaration, the params.yaml edits (composer token, profiles) and a new
    profile's pipeline are checked before any file is written; a refused command changes
    nothing, so run it again corrected (never needing --force). A --profile params.yaml lacks
    is created, with this corpus.

    \b
    Example:
      gnm data add-corpus haydn-quartets --path ../shared/data/haydn --genre classical \\
          --composer Haydn --profile default --params params.yaml
      gnm data add-corpus haydn-quartets --path ../shared/data/haydn --genre classical \\
          --composer Haydn --profile haydn --params params.yaml   # a new profile
    """
    from pipeline import add_corpus as adding

    root = _data_root(data_root, load_params(params_path))
    if root is None:
        raise GnmError("no data root: give --data-root or set GNM_DATA_ROOT")
    fields = {"genre": genre, "composer": composer, "licence": licence,
              "redistributable": redistributable, "priority": priority}  # fmt: skip
    addition = adding.plan(
        adding.declaration(name, folder, root, fields, description),
        corpora_dir / f"{name}.yaml",
        root,
        force,
        Path(params_path) if params_path else Path("params.yaml"),
        profiles,
        profile_description,
    )
    adding.write_all_or_nothing(addition.writes)
    for line in addition.said:
        click.echo(line)
    for line in addition.notes:
        click.echo(line, err=True)


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
    files, result = _ingest_declared(
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


COMMANDS = (validate, ingest, dedupe, synth, add_corpus, grid_report, ledger)
