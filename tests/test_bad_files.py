"""Every file handled: unreadable files and folders, links, FIFOs, odd and over-long names.

A corpus holding each case builds to the end, and every file ends in the ledger under its reason.
We run as root, where permissions do not stop reads: the unreadable file and folder are
simulated by making `os.open` and `os.scandir` fail with EACCES for those two paths only.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from pipeline.build import stage_commands
from pipeline.cli import main
from pipeline.corpora import load_declaration
from pipeline.ledger import read_decisions
from pipeline.source_files import escape_name, regular_file_sha256, valid_text
from pipeline.stages import ingest
from pipeline.stages.ingest import IngestConfig
from pipeline.synthetic import piece, write_midi
from tests.helpers import m21_path, make_build_root

PATH_MAX = 4096  # Linux: a path of this many bytes or more cannot be opened or listed
# Where the deep folders stop: a listable folder whose file and subfolder pass PATH_MAX.
DEEP_FOLDER_LENGTH = PATH_MAX - 150
LONG_FILE = "f" * 200 + ".mxl"
LONG_FOLDER = "s" * 200

# rel path -> the status ingest must give it (the deep ones are added by `make_corpus`)
EXPECTED = {
    "good.mxl": "accepted",
    "caf\\xe9.mxl": "accepted",  # the name's byte 0xE9 (Latin-1 é) is not UTF-8
    "caf\\\\xe9.mxl": "accepted",  # a real backslash: must not collide with the one above
    "m\\xfcller.mid": "accepted",  # the MIDI reader titles it after its (not UTF-8) name
    "locked.mxl": "quarantined:unreadable",
    "locked_dir": "quarantined:unreadable",
    "dangling.mid": "quarantined:not_a_regular_file",
    "pipe.mid": "quarantined:not_a_regular_file",
    "link_out.mid": "quarantined:outside_root",
}


def make_corpus(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A data root with corpus `bad` holding every case, its declaration folder, and the
    expected status of each file (by relative path, as escaped in ids)."""
    bwv = m21_path("bach/bwv66.6.mxl")
    folder = tmp_path / "data" / "bad"
    folder.mkdir(parents=True)
    shutil.copy(bwv, folder / "good.mxl")
    shutil.copy(bwv, os.fsdecode(os.fsencode(folder) + b"/caf\xe9.mxl"))
    shutil.copy(bwv, folder / "caf\\xe9.mxl")
    write_midi(piece(1, 0), Path(os.fsdecode(os.fsencode(folder) + b"/m\xfcller.mid")))
    # Other chorales: once readable, they must be parsed, not found in the cache as a twin.
    shutil.copy(m21_path("bach/bwv2.6.mxl"), folder / "locked.mxl")
    (folder / "locked_dir").mkdir()
    shutil.copy(m21_path("bach/bwv3.6.mxl"), folder / "locked_dir" / "inner.mxl")
    (folder / "dangling.mid").symlink_to(folder / "missing.mid")
    os.mkfifo(folder / "pipe.mid")
    (tmp_path / "secret.mid").write_bytes(b"MThd")
    (folder / "link_out.mid").symlink_to(tmp_path / "secret.mid")
    (folder / "notes.txt").write_text("not a score: not an input")
    deep = _make_deep_folders(folder / "deep", bwv.read_bytes())
    expected = {
        **EXPECTED,
        f"{deep}/{LONG_FILE}": "quarantined:bad_file_name",
        f"{deep}/{LONG_FOLDER}": "quarantined:bad_file_name",
    }
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    (corpora / "bad.yaml").write_text(
        "name: bad\ndescription: every kind of bad file\n"
        "source: {kind: directory, path: bad, include: ['**/*.mxl', '*.mid']}\n"
        "genre: other\ncomposer: Bach\nlicence: test\nredistributable: true\npriority: 1\n"
    )
    return tmp_path / "data", corpora, expected


def _make_deep_folders(top: Path, score: bytes) -> str:
    """Folders with short names below `top`, down to one whose path is DEEP_FOLDER_LENGTH bytes;
    in it a file and a folder (holding a score) whose paths pass PATH_MAX. Created relative to
    open folders, since their paths cannot be used. Returns the deepest folder's path from the
    corpus root."""
    top.mkdir()
    names: list[str] = []
    length = len(os.fsencode(top))
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        while length < DEEP_FOLDER_LENGTH:
            name = "d" * min(200, DEEP_FOLDER_LENGTH - length - 1)
            os.mkdir(name, dir_fd=fd)
            fd = _enter(fd, name)
            names.append(name)
            length += 1 + len(name)
        _write_at(fd, LONG_FILE, score)
        os.mkdir(LONG_FOLDER, dir_fd=fd)
        fd = _enter(fd, LONG_FOLDER)
        _write_at(fd, "inner.mxl", score)
    finally:
        os.close(fd)
    return "/".join([top.name, *names])


def _enter(fd: int, name: str) -> int:
    inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    return inner


def _write_at(fd: int, name: str, data: bytes) -> None:
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd)
    with os.fdopen(out, "wb") as fh:
        fh.write(data)


@pytest.fixture
def locked(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """EACCES for `locked.mxl` (open) and `locked_dir` (listing), as chmod 000 gives a non-root
    user; other paths are untouched. Undo the patch to make them readable again."""
    real_open, real_scandir = os.open, os.scandir

    def fake_open(path: Any, *args: Any, **kw: Any) -> int:
        if _named(path, "locked.mxl"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))
        return real_open(path, *args, **kw)

    def fake_scandir(path: Any = ".") -> Any:
        if _named(path, "locked_dir"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "scandir", fake_scandir)
    yield monkeypatch


def _named(path: Any, name: str) -> bool:
    return (
        isinstance(path, (str, bytes, os.PathLike)) and os.path.basename(os.fsdecode(path)) == name
    )


def test_every_bad_file_ends_in_the_ledger_under_its_reason(
    tmp_path: Path, locked: pytest.MonkeyPatch
) -> None:
    root, corpora, expected = make_corpus(tmp_path)
    decl = load_declaration(corpora / "bad.yaml")
    files = decl.files(root)
    assert sorted(f.rel_path for f in files) == sorted(expected)
    with ingest.run(
        files, {"bad": decl}, IngestConfig(timeout_s=60), None, scheduler="inline"
    ) as result:
        decisions = ingest.write_outputs(result, tmp_path / "out")
    assert {d.rel_path: d.status for d in decisions} == expected
    assert all(d.detail for d in decisions if d.kind == "quarantined")
    pieces = pq.read_table(tmp_path / "out" / "pieces.parquet").to_pylist()
    ids = ["bad/caf\\\\xe9.mxl", "bad/caf\\xe9.mxl", "bad/good.mxl", "bad/m\\xfcller.mid"]
    assert [p["id"] for p in pieces] == ids
    assert pieces[-1]["title"] == "m\\xfcller"
    written = pq.read_table(tmp_path / "out" / "decisions.parquet").column("id").to_pylist()
    assert written == sorted(f"bad/{rel}" for rel in expected)


def test_the_cli_builds_past_bad_files_and_parses_them_once_they_are_readable(
    tmp_path: Path, locked: pytest.MonkeyPatch
) -> None:
    root, corpora, expected = make_corpus(tmp_path)
    stages, cache = tmp_path / "stages", tmp_path / "cache"
    args = ["data", "ingest", "--corpora", str(corpora), "--data-root", str(root),
            "--out", str(stages / "ingest"), "--cache", str(cache), "--scheduler", "inline", "--json"]  # fmt: skip
    first = _cli(*args)
    assert (first["files"], first["items"], first["accepted"]) == (len(expected), len(expected), 4)
    assert (first["parsed"], first["from_cache"], first["unread"]) == (4, 0, 7)
    assert first["quarantine_reasons"] == {
        "bad_file_name": 2, "not_a_regular_file": 2, "outside_root": 1, "unreadable": 2,
    }  # fmt: skip

    ledger_args = ["data", "ledger", "--stages-dir", str(stages), "--reports", str(tmp_path / "r")]
    result = CliRunner().invoke(main, ledger_args)
    assert result.exit_code == 0, result.output
    assert "11 items = 4 accepted + 0 duplicate + 0 merged + 7 quarantined" in result.output
    for line in ("unreadable: 2", "not_a_regular_file: 2", "outside_root: 1", "bad_file_name: 2"):
        assert f"  quarantined:{line}\n" in result.output
    listed = CliRunner().invoke(main, [*ledger_args, "--status", "quarantined"]).output
    assert "bad/locked.mxl\tquarantined:unreadable\tingest\tPermission denied" in listed

    # Readable again: the file and the folder's file are parsed, the rest comes from the cache.
    locked.undo()
    again = _cli(*args)
    assert (again["files"], again["parsed"], again["from_cache"], again["unread"]) == (11, 2, 4, 5)
    assert (again["accepted"], again["quarantined"]) == (6, 5)


@pytest.mark.corpus
def test_a_build_runs_every_stage_past_every_bad_file(
    tmp_path: Path, locked: pytest.MonkeyPatch
) -> None:
    """`gnm data build --no-dvc`, its stage commands run in this process (where the simulated
    EACCES applies): the ledger holds every file under its reason, and the counts add up."""
    data, corpora, expected = make_corpus(tmp_path)
    root = make_build_root(tmp_path / "repo", "{bad: null}")
    shutil.copy(corpora / "bad.yaml", root / "corpora" / "bad.yaml")
    locked.chdir(root)
    locked.setenv("GNM_DATA_ROOT", str(data))
    locked.setenv("DASK_SCHEDULER_ADDRESS", "inline")
    for name, command in stage_commands(root / "dvc.yaml", "default"):
        result = CliRunner().invoke(main, shlex.split(command)[1:])
        assert result.exit_code == 0, f"{name}: {result.output}"
    ledger = read_decisions(root / "reports" / "default" / "ledger.parquet")
    final = {d.rel_path: d.status for d in ledger}
    assert final.keys() == expected.keys()
    for rel, status in expected.items():
        if status != "accepted":
            assert final[rel] == status, rel
    chorale = ("good.mxl", "caf\\xe9.mxl", "caf\\\\xe9.mxl")  # one kept, two duplicates
    assert sorted(final[rel].split(":")[0] for rel in chorale) == [
        "accepted",
        *["duplicate_of"] * 2,
    ]
    assert final["m\\xfcller.mid"] == "accepted"
    info = json.loads((root / "reports" / "default" / "ledger.json").read_text())
    assert info["adds_up"] and info["items"] == len(expected)


def _cli(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_a_fifo_in_a_files_place_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.mid")
    assert regular_file_sha256(tmp_path / "pipe.mid") is None
    (tmp_path / "file.mid").write_bytes(b"abc")
    assert regular_file_sha256(tmp_path / "file.mid") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def _unescape(name: str) -> bytes:
    """The inverse of escape_name: what README promises a reader of the ids can do."""
    parts = re.split(r"(\\\\|\\x[0-9a-f]{2})", name)
    out = b""
    for part in parts:
        if part == "\\\\":
            out += b"\\"
        elif re.fullmatch(r"\\x[0-9a-f]{2}", part):
            out += bytes([int(part[2:], 16)])
        else:
            out += part.encode()
    return out


@given(st.binary(max_size=24).filter(lambda b: b"/" not in b and b"\0" not in b))
def test_escaped_names_are_utf8_and_give_back_their_bytes(raw: bytes) -> None:
    escaped = escape_name(os.fsdecode(raw))
    escaped.encode("utf-8")  # valid: raises otherwise
    assert _unescape(escaped) == raw  # so two different names never share an id


def test_free_text_becomes_valid_utf8() -> None:
    assert valid_text(os.fsdecode(b"caf\xe9 \\ ok")) == "caf\\xe9 \\ ok"
    assert valid_text("\ud800") == "\\ud800"
    assert valid_text("Bach") == "Bach"
