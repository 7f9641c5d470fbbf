"""`gnm data build`: run the DVC pipeline of a profile, or its stages directly when DVC is absent.

The top-level `dvc.yaml` is the `default` profile; every other profile has
`profiles/<name>/dvc.yaml`, generated from it (pipeline/profile_pipelines.py): a build of a
profile params.yaml names writes that file first when it is missing or out of date.

Without DVC, the stages' commands are read from the same dvc.yaml and run in order, so paths
still live in one place; what is lost is DVC's change tracking (every stage runs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from pipeline.errors import GnmError
from pipeline.profile_pipelines import ROOT_OPTION, dvc_file, ensure_pipeline


def stage_commands(dvc_yaml: Path, profile: str) -> list[tuple[str, str]]:
    """(stage name, command with the profile substituted) in file order."""
    data: Any = yaml.safe_load(dvc_yaml.read_text())
    return [
        (name, str(stage["cmd"]).replace("${profile}", profile))
        for name, stage in data["stages"].items()
    ]


def _environment() -> dict[str, str]:
    # Stage commands call `gnm`: put this interpreter's bin folder (the venv) first on PATH.
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def dvc_available() -> bool:
    """Whether the `dvc` command can be run from this environment."""
    return shutil.which("dvc", path=_environment()["PATH"]) is not None


def build(
    root: Path,
    profile: str,
    use_dvc: bool = True,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Build a profile; return the stages that ran (DVC: the ones it reproduced).

    A profile params.yaml names gets its generated pipeline file first when it has none (or an
    out-of-date one); `echo` says so.
    """
    made = ensure_pipeline(root, profile)
    if made:
        echo(f"build {profile}: {made}")
    path = dvc_file(root, profile)
    if not path.is_file():
        raise GnmError(f"{path}: no pipeline for profile {profile!r} (see params.yaml profiles)")
    env = _environment()
    if use_dvc and dvc_available():
        argv = ["dvc", "repro", str(path.relative_to(root))] + (["--force"] if force else [])
        echo(f"build {profile}: {' '.join(argv)}")
        done = subprocess.run(argv, cwd=root, env=env, check=False)
        if done.returncode:
            raise GnmError(f"dvc repro failed for profile {profile!r} (exit {done.returncode})")
        return []
    echo(
        f"build {profile}: {'DVC is not installed' if use_dvc else '--no-dvc'}: running the "
        f"stages of {path.relative_to(root)} directly, in order, without change tracking"
    )
    ran = []
    for name, command in stage_commands(path, profile):
        started = time.perf_counter()
        echo(f"stage {name}: {command}")
        done = subprocess.run(command, shell=True, cwd=root, env=env, check=False)
        if done.returncode:
            raise GnmError(f"stage {name} failed (exit {done.returncode}): {command}")
        echo(f"stage {name}: done in {time.perf_counter() - started:.1f} s")
        ran.append(name)
    return ran


@click.command("build")
@click.option(
    "--profile",
    default="default",
    show_default=True,
    help="A profile of params.yaml: default, quick, full or one you added.",
)
@click.option("--no-dvc", is_flag=True, help="Run the stages directly even when DVC is installed.")
@click.option("--force", is_flag=True, help="Rebuild every stage (dvc repro --force).")
@ROOT_OPTION
def build_command(profile: str, no_dvc: bool, force: bool, root: Path) -> None:
    """Build a profile's shards and reports: `dvc repro` of its dvc.yaml.

    Outputs go to data/<profile>/ (one folder per stage, shards in data/<profile>/shards) and
    reports/<profile>/ (stats.json, plots, ledger). A second build does nothing when nothing
    changed.

    \b
    Example:
      gnm data build                  # the default profile (music21's corpus)
      gnm data build --profile quick  # a few hundred items, a minute
      gnm data build --profile full --force

    A profile added to params.yaml (by hand or by `gnm data add-corpus --profile NEW`) gets its
    pipeline, profiles/<profile>/dvc.yaml, generated from dvc.yaml on its first build.
    """
    started = time.perf_counter()
    build(root, profile, use_dvc=not no_dvc, force=force, echo=click.echo)
    click.echo(
        f"build {profile}: finished in {time.perf_counter() - started:.1f} s; shards in "
        f"data/{profile}/shards, reports in reports/{profile}"
    )
