"""The options and helpers of the commands that read declared sources: ingest, grid-report,
crosscheck (which corpora, which profile, where the data root is, the parse cache, the cluster)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from pipeline.cli.common import progress
from pipeline.corpora import CorpusDecl, SourceFile, load_declarations, resolve_data_root
from pipeline.errors import GnmError
from pipeline.params import Params, Profile
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


def data_root_of(option: str | None, params: Params) -> Path | None:
    """The data root: --data-root, else $GNM_DATA_ROOT, else params.yaml's ingest.data_root."""
    # The CLI is the one place that reads the environment (STYLE.md: config flows one way).
    return resolve_data_root(option, os.environ.get("GNM_DATA_ROOT"), params.ingest.data_root)


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


def ingest_declared(
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
    root = data_root_of(data_root, params)
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
