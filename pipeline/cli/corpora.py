"""`gnm data validate|synth|add-corpus`: the commands over the corpus declarations."""

from __future__ import annotations

import time
from pathlib import Path

import click

from pipeline.cli.common import PARAMS_OPTION, progress
from pipeline.cli.sources import CORPORA_OPTION, DATA_ROOT_OPTION, data_root_of
from pipeline.corpora import GENRES, validate_folder
from pipeline.errors import GnmError
from pipeline.params import load_params


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
    root = data_root_of(data_root, params)
    if not corpora_dir.is_dir():
        raise GnmError(f"{corpora_dir}: corpus declaration folder does not exist")
    problems = validate_folder(corpora_dir, root)
    for line in problems:
        click.echo(line)
    n = len(list(corpora_dir.glob("*.yaml")))
    if problems:
        raise GnmError(f"{len(problems)} of {n} declarations have problems")
    click.echo(f"{n} declarations valid" + (f" (data root {root})" if root else ""))


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

    root = data_root_of(data_root, load_params(params_path))
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
    type=click.Choice(GENRES),
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

    root = data_root_of(data_root, load_params(params_path))
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


COMMANDS = (validate, synth, add_corpus)
