"""`gnm data add-corpus`, all or nothing: every file it changes is made and checked first.

The declaration, the params.yaml edits (the composer's token, the corpus in each named profile,
a new profile when one is named that params.yaml lacks) and a new profile's generated dvc.yaml
are built in memory and validated before anything is written. Then each file is written
atomically, and a failure while writing puts back what was already written, so a refused
command leaves every file as it was and is simply run again (never needing --force).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.corpora import parse_declaration
from pipeline.errors import GnmError
from pipeline.io.atomic import write_bytes_atomic, write_text_atomic
from pipeline.params import load_params, parse_params
from pipeline.params_edit import with_composer, with_corpus, with_profile
from pipeline.profile_pipelines import pipeline_file, written_line
from pipeline.readers import SUPPORTED_EXTENSIONS


@dataclass
class Addition:
    """What adding a corpus will write (path -> full new text, in write order) and say."""

    writes: dict[Path, str] = field(default_factory=dict)
    said: list[str] = field(default_factory=list)  # for stdout, once written
    notes: list[str] = field(default_factory=list)  # for stderr


def declaration(
    name: str,
    folder: Path,
    data_root: Path,
    fields: Mapping[str, Any],
    description: str | None,
) -> dict[str, Any]:
    """The declaration of `folder` (under `data_root`) with the given fields, not yet checked.

    `fields` holds genre, composer (or None), licence, redistributable and priority.
    """
    try:
        rel = folder.resolve().relative_to(data_root.resolve())
    except ValueError:
        raise GnmError(
            f"{folder}: not inside the data root {data_root} (move it there or give --data-root)"
        ) from None
    formats = sorted(
        {
            p.suffix.lower().lstrip(".")
            for p in folder.rglob("*")
            if p.suffix.lower() in SUPPORTED_EXTENSIONS
        }
    )
    if not formats:
        raise GnmError(f"{folder}: no score files ({', '.join(SUPPORTED_EXTENSIONS)}) found")
    composer = fields.get("composer")
    return {
        "name": name,
        "description": description or f"Scores in {rel.as_posix()}",
        "source": {
            "kind": "directory",
            "path": rel.as_posix(),
            "include": [f"**/*.{f}" for f in formats],
        },
        "formats": formats,
        "genre": fields["genre"],
        **({"composer": composer} if composer else {}),
        "licence": fields["licence"],
        "redistributable": fields["redistributable"],
        "priority": fields["priority"],
    }


def plan(
    data: Mapping[str, Any],
    target: Path,
    data_root: Path,
    force: bool,
    params_file: Path,
    profiles: Sequence[str],
    profile_description: str | None,
) -> Addition:
    """Everything adding the declaration `data` as `target` changes, checked; nothing written.

    A profile in `profiles` that params.yaml lacks is created with this corpus (described by
    `profile_description`, or a generated line), with its generated pipeline file.
    """
    addition = Addition()
    decl = parse_declaration(dict(data), str(target))
    written = yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True)
    found = f"{len(decl.files(data_root))} files ({', '.join(data['formats'])})"
    if _text_of(target) == written:  # a rerun: the declaration is done, the rest may not be
        addition.said.append(f"{target}: unchanged, {found}")
    elif target.exists() and not force:
        raise GnmError(f"{target}: exists and differs (use --force to overwrite)")
    else:
        addition.writes[target] = written
        addition.said.append(f"wrote {target}: {found}")
    composer = data.get("composer")
    if not params_file.is_file():
        if profiles:
            raise GnmError(
                f"{params_file}: missing, so --profile has no profiles to add to (give --params)"
            )
        if composer:
            addition.notes.append(
                f"note: no {params_file}: add {composer} to vocab.composers yourself for a "
                "Composer token"
            )
        return addition
    source = str(params_file)
    load_params(params_file)  # reads within config_yaml's bounds before the whole text is read
    text = original = params_file.read_text()
    if composer:
        edited = with_composer(text, source, composer)
        if edited != text:
            addition.said.append(
                f"appended {composer} to vocab.composers in {params_file}: new token "
                f"Composer_{composer}"
            )
        text = edited
    created = []
    for profile in dict.fromkeys(profiles):  # each once, in the order given
        known = parse_params(text, source).profiles
        if profile not in known:
            about = profile_description or f"{decl.name} (profile made by gnm data add-corpus)"
            text = with_profile(text, source, profile, about, [decl.name])
            addition.said.append(
                f"created profile {profile} in {params_file} (corpora: {decl.name}; "
                f"description: {about})"
            )
            created.append(profile)
        elif known[profile].everything:
            addition.said.append(f"profile {profile} reads every declared corpus: nothing to add")
        else:
            edited = with_corpus(text, source, profile, decl.name)
            if edited != text:
                addition.said.append(f"added {decl.name} to profile {profile} in {params_file}")
            text = edited
    if text != original:
        addition.writes[params_file] = text
    _plan_pipelines(addition, params_file.parent, created)
    return addition


def _text_of(path: Path) -> str | None:
    """The text of `path`, or None when there is no such readable text file."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _plan_pipelines(addition: Addition, repo: Path, created: Sequence[str]) -> None:
    """Add the generated pipeline files of the newly `created` profiles (repo: params.yaml's folder)."""
    for profile in created:
        if not (repo / "dvc.yaml").is_file():
            addition.notes.append(
                f"note: no dvc.yaml beside params.yaml: `gnm data build --profile {profile}` "
                "in the repository writes the profile's pipeline"
            )
            continue
        file = pipeline_file(repo, profile)
        if file.due:
            assert file.text is not None  # a due file always has its generated text
            addition.writes[file.path] = file.text
            addition.said.append(written_line(repo, file))
        addition.said.append(f"build it with: gnm data build --profile {profile}")


def write_all_or_nothing(writes: Mapping[Path, str]) -> None:
    """Write each file atomically, in order; on any failure put back those already written."""
    done: list[tuple[Path, bytes | None, list[Path]]] = []
    try:
        for path, text in writes.items():
            old = path.read_bytes() if path.exists() else None
            made = [d for d in path.parents if not d.exists()]  # nearest first
            done.append((path, old, made))
            write_text_atomic(path, text)
    except (OSError, GnmError) as exc:
        for path, old, made in reversed(done):
            if old is None:
                path.unlink(missing_ok=True)
            else:
                write_bytes_atomic(path, old)
            for folder in made:
                with contextlib.suppress(OSError):  # not empty: something else is there now
                    folder.rmdir()
        raise GnmError(f"{done[-1][0]}: cannot write ({exc}); nothing was changed") from exc
