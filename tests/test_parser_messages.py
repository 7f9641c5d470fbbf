from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.readers.common import ItemFailure
from pipeline.readers.parser_messages import (
    KEPT_MESSAGES,
    PARSER_WARNINGS,
    FileMessages,
    attribute,
    capture,
)
from pipeline.score import Score
from pipeline.stages.ingest_read import ParseJob, parse_job
from pipeline.stages.parser_warnings import WarningTally, ledger_detail
from tests.helpers import REPO, TEST_DATA, read_one

WARNS = TEST_DATA / "unparseable_event.krn"
MUSIC21_SAYS = "humdrum.spineParser: WARNING: Error in parsing event ('8192g') at line 11"


def test_capture_keeps_stderr_lines_and_warnings_in_order_and_prints_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with capture() as said:
        sys.stderr.write("music21: WARNING: one\n\n")
        warnings.warn("two   spaced\nout", UserWarning, stacklevel=1)
        sys.stderr.write("a last line without its newline")
    assert said == [
        "music21: WARNING: one",
        "UserWarning: two spaced out",
        "a last line without its newline",
    ]
    assert capfd.readouterr().err == ""


def test_a_warning_about_code_is_not_about_the_file(capfd: pytest.CaptureFixture[str]) -> None:
    with capture() as said:
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
        warnings.warn("odd file", UserWarning, stacklevel=1)
    assert said == ["UserWarning: odd file"]
    assert capfd.readouterr().err == ""


def test_an_inner_capture_hands_its_messages_to_the_enclosing_one() -> None:
    with capture() as outer:
        sys.stderr.write("before\n")
        with capture() as inner:
            sys.stderr.write("inside\n")
        sys.stderr.write("after\n")
    assert inner == ["inside"]
    assert outer == ["before", "inside", "after"]


def test_messages_no_piece_counted_are_counted_on_the_first_score() -> None:
    score = read_one(TEST_DATA / "two_tunes.abc")
    counted = score.with_counts({PARSER_WARNINGS: 1})
    items: list[Score | ItemFailure] = [ItemFailure("1", "parse_error", "x"), counted, score]
    messages = ["a", "b", "c", "d"]
    out, record = attribute(items, messages)
    assert out[0] is items[0] and out[2] is score
    assert isinstance(out[1], Score) and out[1].report[PARSER_WARNINGS] == 4
    assert record == FileMessages(4, tuple(messages[:KEPT_MESSAGES]))
    assert attribute(items, []) == (items, None)


def test_a_file_music21_warns_about_counts_its_warning_and_prints_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    score, said = parse_job(ParseJob(str(WARNS), False, None))
    assert isinstance(score, Score) and isinstance(said, FileMessages)
    assert score.report[PARSER_WARNINGS] == 1 and score.report["reader_fallback:kern:duration"] == 1
    assert len(score.notes) == 7 and score.report["source_notes"] == 8  # the 1/8192 note is lost
    assert said.count == 1 and said.first[0].startswith(MUSIC21_SAYS)
    assert capfd.readouterr().err == ""


def test_the_ledger_detail_quotes_messages_without_the_ledgers_separator() -> None:
    assert ledger_detail(3) == "parser_warnings:3"
    assert ledger_detail(2, ("x; y", "z")) == 'parser_warnings:2 (first: "x, y" | "z")'


def test_the_tally_names_the_first_file_and_counts_files() -> None:
    tally = WarningTally()
    assert tally.line() is None
    tally.add("c/a.krn", FileMessages(1, ("bad event",)))
    assert tally.line() == "1 parser warning in 1 file, first: c/a.krn: bad event"
    tally.add("c/b.krn", FileMessages(90, ("other",)))
    assert tally.line() == "91 parser warnings in 2 files, first: c/a.krn: bad event"
    assert tally.as_dict() == {"messages": 91, "files": 2, "first": "c/a.krn: bad event"}


def _corpus(tmp_path: Path) -> tuple[Path, Path]:
    """A data root holding the warning file and a clean one, and a corpora folder declaring them."""
    folder = tmp_path / "data" / "warn"
    folder.mkdir(parents=True)
    shutil.copy(WARNS, folder / "unparseable_event.krn")
    shutil.copy(TEST_DATA / "two_tunes.abc", folder / "two_tunes.abc")
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    (corpora / "warn.yaml").write_text(
        "name: warn\ndescription: a file music21 warns about\n"
        "source: {kind: directory, path: warn, include: ['*.krn', '*.abc']}\n"
        "genre: other\nlicence: test\nredistributable: true\npriority: 1\n"
    )
    return tmp_path / "data", corpora


def test_ingest_with_its_output_in_a_log_shows_progress_and_names_the_warning(
    tmp_path: Path,
) -> None:
    root, corpora = _corpus(tmp_path)
    out = tmp_path / "ingest"
    command = [sys.executable, "-m", "gnm_model.cli", "data", "ingest", "--corpora", str(corpora),
               "--data-root", str(root), "--out", str(out), "--no-cache", "--scheduler", "inline"]  # fmt: skip
    env = {**os.environ, "GNM_LOG_LINE_S": "0.1"}
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    arrived: list[tuple[float, str]] = []  # stderr lines with the time each came through the pipe

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            arrived.append((time.monotonic(), line.rstrip("\n")))

    reader = threading.Thread(target=read_stderr)
    reader.start()
    # Not communicate(): it would read stderr too, racing the thread for its lines.
    assert proc.stdout is not None
    stdout = proc.stdout.read()
    proc.wait(timeout=300)
    ended = time.monotonic()
    reader.join()
    assert proc.returncode == 0, (stdout, arrived)
    lines = [line for _, line in arrived]
    waiting = [t for t, line in arrived if re.fullmatch(r"ingest: reading: 0/2 \(0\.0%\) after \d+s; none finished yet", line)]  # fmt: skip
    assert waiting and waiting[0] < ended - 0.1, lines  # written while the files were read
    assert "ingest: reading: 2/2 done in" in "\n".join(lines)
    assert not any("spineParser" in line for line in lines)  # no bare parser lines in the log
    assert (
        f"1 parser warning in 1 file, first: warn/unparseable_event.krn: {MUSIC21_SAYS}" in stdout
    )
    decisions = pq.read_table(out / "decisions.parquet").to_pylist()
    (warned,) = [d for d in decisions if d["id"] == "warn/unparseable_event.krn"]
    assert warned["status"] == "accepted"
    assert warned["detail"].startswith(
        f'reader_fallback:kern:duration; parser_warnings:1 (first: "{MUSIC21_SAYS}'
    )
    assert all("parser_warnings" not in d["detail"] for d in decisions if d is not warned)
