from __future__ import annotations

import errno
import os
import re
import time
from pathlib import Path

import pytest

from pipeline.corpora import load_declaration, load_declarations, resolve_data_root, validate_folder
from pipeline.errors import CorpusError
from pipeline.executor import Limits, run_isolated
from tests.helpers import REPO
from tests.hostile import yaml_alias_bomb

CORPORA = REPO / "corpora"

VALID = """\
name: {name}
description: a test corpus
source:
  kind: directory
  path: {path}
  include: ["**/*.mid", "*.abc"]
  exclude: ["skip/**"]
genre: folk
composer_from_path:
  pattern: "^(?P<composer>[^/]+)/"
  map: {{bach: Bach}}
  default: Anonymous
licence: CC0
redistributable: true
priority: 10
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def test_shipped_declarations_are_valid_and_cover_the_issue_list(data_root: Path) -> None:
    assert validate_folder(CORPORA, data_root) == []
    names = {d.name for d in load_declarations(CORPORA)}
    assert {
        "m21-bach", "m21-beethoven", "m21-mozart", "m21-chopin", "m21-classical", "m21-palestrina", "m21-folk",
        "asap", "sapp-beethoven-sonatas", "sapp-mozart-sonatas", "sapp-chopin-preludes", "pop909", "openewld",
        "nottingham",
    } <= names  # fmt: skip
    palestrina = load_declaration(CORPORA / "m21-palestrina.yaml")
    assert not palestrina.redistributable
    # The Josquin ABC books store one voice per tune: that corpus merges them.
    grouping = {d.name for d in load_declarations(CORPORA) if d.group_voices}
    assert grouping == {"m21-classical"}
    assert "josquin/**/*.abc" in load_declaration(CORPORA / "m21-classical.yaml").include


def test_shipped_declarations_enumerate_the_real_files(data_root: Path) -> None:
    counts = {d.name: len(d.files(data_root)) for d in load_declarations(CORPORA)}
    assert counts["asap"] == 232 and counts["pop909"] == 909 and counts["openewld"] == 502
    assert counts["sapp-beethoven-sonatas"] == 103 and counts["nottingham"] == 14
    assert counts["m21-bach"] == 413 and counts["m21-chopin"] == 1
    asap = load_declaration(CORPORA / "asap.yaml")
    composers = {asap.composer_for(f.rel_path) for f in asap.files(data_root)}
    assert {"Bach", "Beethoven", "Chopin", "Mozart", "Liszt"} <= composers


def test_directory_corpus_globs_excludes_composer_map_and_order(tmp_path: Path) -> None:
    data = tmp_path / "data" / "set"
    for rel in ("bach/a.mid", "bach/b.mid", "other/c.mid", "skip/d.mid", "top.abc", "notes.txt"):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_text("x")
    decl = load_declaration(write(tmp_path, "set", VALID.format(name="set", path="set")))
    files = decl.files(tmp_path / "data")
    assert [f.rel_path for f in files] == ["bach/a.mid", "bach/b.mid", "other/c.mid", "top.abc"]
    assert files[0].id == "set/bach/a.mid"
    assert [decl.composer_for(f.rel_path) for f in files] == ["Bach", "Bach", "other", "Anonymous"]


def test_paths_cannot_escape_the_root(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="source.path"):
        load_declaration(write(tmp_path, "bad", VALID.format(name="bad", path="../elsewhere")))
    # A link out of the root is one bad item (listed with its reason, never read), not a bad
    # declaration; a link to a folder inside is not followed (its files are listed once).
    data = tmp_path / "data" / "set"
    (data / "bach").mkdir(parents=True)
    (data / "bach" / "a.mid").write_text("x")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.mid").write_text("x")
    os.symlink(outside / "secret.mid", data / "link.mid")
    os.symlink(outside, data / "out")
    os.symlink(data / "bach", data / "again")
    decl = load_declaration(write(tmp_path, "set", VALID.format(name="set", path="set")))
    assert {f.rel_path: (f.reason, f.detail) for f in decl.files(tmp_path / "data")} == {
        "bach/a.mid": (None, ""),
        "link.mid": ("outside_root", "symlink to a file outside the root"),
        "out": ("outside_root", "symlink to a folder outside the root"),
    }


def test_a_root_that_cannot_be_listed_is_a_corpus_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data" / "set").mkdir(parents=True)
    decl = load_declaration(write(tmp_path, "set", VALID.format(name="set", path="set")))

    def denied(path: object) -> object:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "scandir", denied)
    with pytest.raises(CorpusError, match="cannot list source folder .*Permission denied"):
        decl.files(tmp_path / "data")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (VALID.replace("genre: folk", "genre: baroque-pop"), "field genre"),
        (VALID.replace("priority: 10", "priority: high"), "field priority"),
        (VALID + "group_voices: yes please\n", "field group_voices"),
        (VALID.replace("licence: CC0\n", ""), "'licence' is a required property"),
        (VALID.replace("  path: {path}\n", ""), "field source"),
        (VALID + "composer: Bach\n", "top level"),
        (VALID.replace('"^(?P<composer>[^/]+)/"', '"^([^/]+)/"'), "composer_from_path.pattern"),
        ("name: [unclosed", "not valid YAML"),
    ],
)
def test_invalid_declarations_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "set", text.format(name="set", path="set") if "{name}" in text else text)
    with pytest.raises(CorpusError, match=message) as info:
        load_declaration(path)
    assert str(path) in str(info.value)
    assert len(validate_folder(tmp_path, None)) == 1


def test_name_must_match_file_and_missing_data_root(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="must equal the file name"):
        load_declaration(write(tmp_path, "other", VALID.format(name="set", path="set")))
    decl = load_declaration(write(tmp_path, "set", VALID.format(name="set", path="set")))
    with pytest.raises(CorpusError, match="needs a data root"):
        decl.files(None)
    with pytest.raises(CorpusError, match="does not exist"):
        decl.files(tmp_path / "nowhere")


def test_data_root_precedence() -> None:
    assert resolve_data_root("a", "b", "c") == Path("a")
    assert resolve_data_root(None, "b", "c") == Path("b")
    assert resolve_data_root(None, None, "c") == Path("c")
    assert resolve_data_root(None, None, None) is None


def test_a_catastrophic_composer_pattern_runs_in_linear_time(tmp_path: Path) -> None:
    # (a+)+$ backtracks exponentially in Python's re: minutes at 30 characters, forever at 4,000.
    text = VALID.replace('"^(?P<composer>[^/]+)/"', '"^(?P<composer>(a+)+)$"')
    decl = load_declaration(write(tmp_path, "set", text.format(name="set", path="set")))
    started = time.monotonic()
    assert decl.composer_for("a" * 4000 + "/x.mid") == "Anonymous"  # no match: the default
    assert decl.composer_for("a" * 4000) == "a" * 4000
    assert time.monotonic() - started < 1


def test_exclude_globs_run_in_linear_time(tmp_path: Path) -> None:
    # Eight `**/` made a regex that Python's re took 7 s on for each 40-folder path.
    data = tmp_path / "data" / "set" / Path(*["a"] * 40)
    data.mkdir(parents=True)
    (data / "y.mid").write_text("x")
    text = VALID.replace('exclude: ["skip/**"]', 'exclude: ["' + "**/" * 8 + 'z.mid"]')
    decl = load_declaration(write(tmp_path, "set", text.format(name="set", path="set")))
    started = time.monotonic()
    assert len(decl.files(tmp_path / "data")) == 1
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(?P<composer>\\w+)/", "\\w would match ASCII only"),  # RE2's \w misses "Dvořák"
        (r"(?P<composer>[^/]+)/\\1", "invalid escape sequence"),  # a backreference
        (r"(?P<composer>[^/]+)(?=/)", "invalid perl operator"),  # a lookahead
    ],
)
def test_patterns_that_re2_reads_otherwise_are_refused(
    tmp_path: Path, pattern: str, message: str
) -> None:
    text = VALID.replace('"^(?P<composer>[^/]+)/"', f'"{pattern}"')  # YAML unescapes \\
    path = write(tmp_path, "set", text.format(name="set", path="set"))
    with pytest.raises(CorpusError, match=re.escape(message)) as info:
        load_declaration(path)
    assert f"{path}: field composer_from_path.pattern" in str(info.value)


def test_an_alias_bomb_is_refused_at_once_in_little_memory(tmp_path: Path) -> None:
    path = yaml_alias_bomb(tmp_path)
    # Before: 1.3 GB and still running after 30 s (jsonschema's message is the value's repr).
    outcome = run_isolated(load_declaration, path, Limits(timeout_s=10, memory_mb=200))
    assert outcome.reason == "CorpusError", outcome
    assert f"{path}: not valid YAML: aliases (*name) are not allowed" in outcome.detail
    assert validate_folder(tmp_path, None) == [f"{path}: {outcome.detail.split(': ', 1)[1]}"]
