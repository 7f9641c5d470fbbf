"""Each profile's DVC pipeline, generated from the top-level one, and `gnm data profiles`.

The top-level `dvc.yaml` is the `default` profile; every other profile of params.yaml has
`profiles/<name>/dvc.yaml`, the same stages with `vars: profile: <name>` and `wdir: ../..` (so
commands and paths stay relative to the repository root). The tool writes these files: `gnm data
build --profile P` makes P's when it is missing or out of date with `dvc.yaml`, and so do `gnm
data add-corpus --profile NEW` and `gnm data profiles --write`. A file without the GENERATED
header was written by hand and is left as it is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import click

from pipeline.cli.common import DEFAULT_PROFILE
from pipeline.errors import GnmError
from pipeline.io.atomic import write_text_atomic
from pipeline.params import Params, Profile, load_params

ROOT_DVC = "dvc.yaml"
GENERATED = "# GENERATED from the top-level dvc.yaml"  # how every generated file starts
HEADER = f"{GENERATED} by pipeline.profile_pipelines.profile_dvc_yaml: edit that file.\n"

ROOT_OPTION = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Repository root (holds dvc.yaml, params.yaml, corpora/, profiles/).",
)

# What a profile's pipeline file is, compared with what the top-level dvc.yaml generates.
TOP_LEVEL = "top-level"  # the default profile: dvc.yaml itself
CURRENT = "current"
MISSING = "missing"
STALE = "stale"  # generated from an older dvc.yaml
HAND_WRITTEN = "hand-written"  # no GENERATED header: never overwritten


def dvc_file(root: Path, profile: str) -> Path:
    """The dvc.yaml of a profile."""
    return (
        root / ROOT_DVC if profile == DEFAULT_PROFILE else root / "profiles" / profile / "dvc.yaml"
    )


def profile_dvc_yaml(top_level: str, profile: str) -> str:
    """The text of profiles/<profile>/dvc.yaml, derived from the top-level dvc.yaml."""
    body = top_level[top_level.index("vars:") :]
    body = body.replace("  - profile: default", f"  - profile: {profile}", 1)
    # Every stage runs from the repository root, two levels up.
    body = re.sub(r"(?m)^(  [a-z_]+):\n    cmd:", r"\1:\n    wdir: ../..\n    cmd:", body)
    return HEADER + body


@dataclass(frozen=True)
class PipelineFile:
    """A profile's pipeline file, its state and (unless top-level or hand-written) its due text."""

    profile: str
    path: Path
    state: str
    text: str | None

    @property
    def due(self) -> bool:
        """Whether the tool should (re)write it."""
        return self.state in (MISSING, STALE)


def pipeline_file(root: Path, profile: str) -> PipelineFile:
    """The state of `profile`'s pipeline under the repository `root`."""
    path = dvc_file(root, profile)
    if profile == DEFAULT_PROFILE:
        return PipelineFile(profile, path, TOP_LEVEL, None)
    top = root / ROOT_DVC
    if not top.is_file():
        raise GnmError(f"{top}: missing (every profile's pipeline is generated from it)")
    text = profile_dvc_yaml(top.read_text(), profile)
    if not path.is_file():
        return PipelineFile(profile, path, MISSING, text)
    written = path.read_text()
    if written == text:
        return PipelineFile(profile, path, CURRENT, text)
    return PipelineFile(
        profile, path, STALE if written.startswith(GENERATED) else HAND_WRITTEN, text
    )


def written_line(root: Path, file: PipelineFile) -> str:
    """What writing a due pipeline file did, in words."""
    why = "it was missing" if file.state == MISSING else f"it was out of date with {ROOT_DVC}"
    return (
        f"wrote {file.path.relative_to(root)} for profile {file.profile} ({why}; generated "
        f"from {ROOT_DVC})"
    )


def ensure_pipeline(root: Path, profile: str) -> str | None:
    """Write `profile`'s generated pipeline when it is due; say what was done (None: nothing).

    GnmError when params.yaml (under `root`) does not name the profile: there is nothing to
    build, and the message says how to add one.
    """
    params_file = root / "params.yaml"
    params = load_params(params_file) if params_file.is_file() else None
    if params is None or profile not in params.profiles:
        known = ", ".join(params.profiles) if params else f"{params_file} is missing"
        raise GnmError(
            f"{dvc_file(root, profile)}: no pipeline for profile {profile!r} (see params.yaml "
            f"profiles: {known}; add it there, or with `gnm data add-corpus NAME ... --profile "
            f"{profile}`)"
        )
    file = pipeline_file(root, profile)
    if file.state == HAND_WRITTEN:
        return f"note: {_state_text(root, file)}: building it as written"
    if not file.due:
        return None
    assert file.text is not None  # a due file always has its generated text
    write_text_atomic(file.path, file.text)
    return written_line(root, file)


def _corpora_text(profile: Profile) -> str:
    if profile.everything:
        return "all declared corpora"
    return ", ".join(
        name if cap is None else f"{name} (first {cap} file{'s' * (cap > 1)})"
        for name, cap in profile.corpora.items()
    )


def _state_text(root: Path, file: PipelineFile) -> str:
    where = file.path.relative_to(root)
    return {
        TOP_LEVEL: f"{where} (the top-level pipeline)",
        CURRENT: f"{where} (current)",
        MISSING: f"{where} missing (written by `gnm data build --profile {file.profile}` or --write)",
        STALE: f"{where} out of date with {ROOT_DVC} (rewritten by the build or --write)",
        HAND_WRITTEN: f"{where} hand-written (no GENERATED header: left as it is)",
    }[file.state]


@click.command("profiles")
@click.option("--write", is_flag=True, help="Write every missing or out-of-date profile pipeline.")
@ROOT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def profiles_command(write: bool, root: Path, as_json: bool) -> None:
    """List params.yaml's profiles: their corpora and whether their pipeline file is current.

    A profile's pipeline (profiles/<name>/dvc.yaml) is generated from the top-level dvc.yaml;
    --write (re)writes the missing and out-of-date ones (`gnm data build --profile` does it for
    the profile it builds).

    \b
    Example:
      gnm data profiles
      gnm data profiles --write
    """
    params: Params = load_params(root / "params.yaml")
    files = [pipeline_file(root, name) for name in params.profiles]
    if write:
        for file in files:
            if file.due:
                assert file.text is not None  # a due file always has its generated text
                write_text_atomic(file.path, file.text)
                click.echo(written_line(root, file), err=as_json)
        files = [pipeline_file(root, name) for name in params.profiles]
    named = {file.path for file in files}
    orphans = sorted(p for p in (root / "profiles").glob("*/dvc.yaml") if p not in named)
    if as_json:
        click.echo(json.dumps({
            "profiles": [
                {"name": f.profile, "description": params.profiles[f.profile].description,
                 "corpora": "all" if params.profiles[f.profile].everything
                 else dict(params.profiles[f.profile].corpora),
                 "pipeline": str(f.path.relative_to(root)), "state": f.state}
                for f in files
            ],
            "pipelines_without_profile": [str(p.relative_to(root)) for p in orphans],
        }, indent=1))  # fmt: skip
        return
    for file in files:
        profile = params.profiles[file.profile]
        click.echo(f"{file.profile}: {profile.description or '(no description)'}")
        click.echo(f"  corpora: {_corpora_text(profile)}")
        click.echo(f"  pipeline: {_state_text(root, file)}")
    for path in orphans:
        click.echo(
            f"note: {path.relative_to(root)}: params.yaml names no profile {path.parent.name}"
        )
