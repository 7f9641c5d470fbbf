"""Edits of params.yaml's text for `gnm data add-corpus`: a composer, a corpus in a profile, a profile.

Each edit changes only the lines it needs (comments and layout stay), parses the result and
checks that exactly the intended change took effect, so a layout it does not understand is an
error, never a silently different file. Nothing here writes: the caller writes the final text
once, after every edit has passed (pipeline/add_corpus.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace

import yaml

from pipeline.config_yaml import parse_config
from pipeline.params import PROFILE_NAME, Params, ParamsError, Profile, parse_params

# The one-line lists the edits extend, as the shipped params.yaml writes them.
_COMPOSERS_LINE = re.compile(r"(?m)^(  composers:[ \t]*\[)([^\]\n]*)(\])")
_CORPORA_LINE = re.compile(r"(?m)^(    corpora:[ \t]*)([\[{])([^\]}\n]*)([\]}])")


def with_composer(text: str, source: str, name: str) -> str:
    """`text` with `name` appended to vocab.composers (unchanged when it is there already).

    Appending keeps every existing token id: only the new Composer token gets a new id.
    """
    before = parse_params(text, source)
    if name in before.vocab.composers:
        return text
    vocab_at = re.search(r"(?m)^vocab:[ \t]*$", text)
    match = _COMPOSERS_LINE.search(text, vocab_at.end()) if vocab_at else None
    if match is None:
        raise ParamsError(
            f"{source}: no `composers: [...]` line under `vocab:` to append {name} to"
        )
    inner = match.group(2).strip()
    entry = json.dumps(name, ensure_ascii=False)
    edited = (
        text[: match.start(2)] + (f"{inner}, {entry}" if inner else entry) + text[match.end(2) :]
    )
    after = parse_params(edited, source)  # the vocabulary's own checks (no spaces, not None)
    if after.vocab.composers != (*before.vocab.composers, name):
        raise ParamsError(f"{source}: appending {name} to vocab.composers did not take effect")
    return edited


def with_corpus(text: str, source: str, profile: str, corpus: str) -> str:
    """`text` with `corpus` added to profiles.<profile>.corpora (all of its files).

    Unchanged when the profile has it already or reads every corpus (`corpora: all`).
    """
    before = parse_params(text, source)
    chosen = before.profile(profile)
    if chosen.everything or corpus in chosen.corpora:
        return text
    start, end = _profile_block(text, source, profile)
    match = _CORPORA_LINE.search(text, start, end)
    if match is None:
        raise ParamsError(
            f"{source}: no one-line `corpora:` list or mapping in profile {profile!r}"
        )
    entry = corpus if match.group(2) == "[" else f"{corpus}: null"
    inner = match.group(3).strip()
    edited = (
        text[: match.start(3)] + (f"{inner}, {entry}" if inner else entry) + text[match.end(3) :]
    )
    wanted = Profile(profile, {**chosen.corpora, corpus: None}, description=chosen.description)
    _check(before, parse_params(edited, source), wanted, source, f"adding {corpus} to")
    return edited


def with_profile(
    text: str, source: str, profile: str, description: str, corpora: Sequence[str]
) -> str:
    """`text` with a new profile reading all files of `corpora`, after the last profile."""
    if not PROFILE_NAME.fullmatch(profile):
        raise ParamsError(
            f"profile name {profile!r}: use lower-case letters, digits, '-' and '_' (it names "
            "the folders data/<profile>/ and profiles/<profile>/)"
        )
    before = parse_params(text, source)
    if profile in before.profiles:
        raise ParamsError(f"{source}: profile {profile!r} exists already")
    lines = text.splitlines(keepends=True)
    heads = [i for i, line in enumerate(lines) if re.fullmatch(r"profiles:[ \t]*(#.*)?\n?", line)]
    if not heads:
        # Without the section the built-in profiles apply; a new section would hide them.
        raise ParamsError(
            f"{source}: no block `profiles:` section to add profile {profile!r} to (copy the "
            "shipped params.yaml's `profiles:` section first)"
        )
    last = heads[0]
    for i in range(heads[0] + 1, len(lines)):
        line = lines[i]
        if line.strip() and not line[0].isspace() and not line.startswith("#"):
            break  # the next top-level section
        if line.strip() and not line.lstrip().startswith("#"):
            last = i  # the profiles' last own line: comments and blanks after it stay below
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    block = (
        f"  {profile}:\n"
        f"    description: {_scalar(description)}\n"
        f"    corpora: [{', '.join(corpora)}]\n"
    )
    edited = "".join([*lines[: last + 1], block, *lines[last + 1 :]])
    wanted = Profile(profile, dict.fromkeys(corpora), description=description)
    _check(before, parse_params(edited, source), wanted, source, "creating")
    return edited


def _profile_block(text: str, source: str, profile: str) -> tuple[int, int]:
    """Character span of profiles.<profile>'s body (its indented lines)."""
    section = re.search(r"(?m)^profiles:[ \t]*(#.*)?$", text)
    head = (
        re.compile(rf"(?m)^  {re.escape(profile)}:[ \t]*(#.*)?$").search(text, section.end())
        if section
        else None
    )
    if head is None:
        raise ParamsError(f"{source}: no `  {profile}:` block under `profiles:` to edit")
    # The body ends at the next line indented two spaces or less (a sibling or a new section).
    after = re.compile(r"(?m)^ {0,2}[^\s#]").search(text, head.end())
    return head.end(), after.start() if after else len(text)


def _check(before: Params, after: Params, wanted: Profile, source: str, doing: str) -> None:
    """ParamsError unless `after` is `before` with exactly `wanted` (re)placed."""
    expected = {**before.profiles, wanted.name: wanted}
    if after.profiles != expected or after.profiles[wanted.name].description != wanted.description:
        raise ParamsError(
            f"{source}: {doing} profile {wanted.name!r} did not take effect as intended "
            "(an unusual layout of `profiles:`? edit it by hand)"
        )
    if replace(after, profiles=before.profiles) != before:
        raise ParamsError(f"{source}: {doing} profile {wanted.name!r} changed another section")


def _scalar(value: str) -> str:
    """`value` as a one-line YAML scalar: plain when YAML reads it back as is, else quoted."""
    try:
        plain = "\n" not in value and parse_config(f"k: {value}\n") == {"k": value}
    except yaml.YAMLError:
        plain = False
    return value if plain else json.dumps(value, ensure_ascii=False)
