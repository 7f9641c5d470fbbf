"""Choosing a reader: fast by default, reference on request, fallback counted, never silent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pipeline.readers as readers
from pipeline.errors import ScoreParseError, Unsupported
from pipeline.readers import ItemFailure, read_items
from pipeline.score import Score
from tests.helpers import TEST_DATA

BOOK = """X:1
T:One
M:3/4
L:1/8
K:G
G2 B2 d2|g4 f2|]

X:2
T:Two
M:2/4
L:1/8
K:D
D2 F2|A2 d2|]

X:3
T:Three
M:6/8
L:1/8
K:D
dfa afd|e3 d3|]
"""


def _fake_fast(behaviour: Callable[..., list[Score | ItemFailure]]) -> Callable[..., Any]:
    """A `reader_for` whose fast reader is `behaviour` and whose reference reader is the real one."""
    real = readers.reader_for

    def reader_for(path: Path, kind: str) -> Callable[..., Any]:
        return behaviour if kind == "fast" else real(path, "reference")  # type: ignore[arg-type]

    return reader_for


def test_reader_for_names_every_extension_and_refuses_unknown_kinds(tmp_path: Path) -> None:
    for ext in readers.SUPPORTED_EXTENSIONS:
        assert set(readers.READERS[ext]) == {"fast", "reference"}
    with pytest.raises(ValueError, match="unknown reader"):
        readers.reader_for(Path("x.abc"), "slow")  # type: ignore[arg-type]
    with pytest.raises(ScoreParseError, match="unsupported file type"):
        readers.reader_for(Path("x.doc"), "fast")


def test_unsupported_file_is_read_by_the_reference_reader_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = tmp_path / "book.abc"
    book.write_text(BOOK)

    def refuses(path: Path, *, expand_repeats: bool = False) -> list[Score | ItemFailure]:
        raise Unsupported("abc:test-construct")

    monkeypatch.setattr(readers, "reader_for", _fake_fast(refuses))
    items = read_items(book)
    assert [s.meta.collection_item for s in items if isinstance(s, Score)] == ["1", "2", "3"]
    assert all(
        isinstance(s, Score) and s.report["reader_fallback:abc:test-construct"] == 1 for s in items
    )


def test_one_unsupported_tune_is_read_alone_by_the_reference_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = tmp_path / "book.abc"
    book.write_text(BOOK)
    reference = readers.reader_for(book, "reference")(book)
    calls: list[set[str] | None] = []
    real_reference = readers.reader_for(book, "reference")

    def spy(path: Path, *, expand_repeats: bool = False, only: set[str] | None = None) -> Any:
        calls.append(only)
        return real_reference(path, expand_repeats=expand_repeats, only=only)

    def fast(path: Path, *, expand_repeats: bool = False) -> list[Score | ItemFailure]:
        return [
            reference[0],
            ItemFailure("2", "unsupported:abc:voice-overlay", "X:2 uses &"),
            reference[2],
        ]

    monkeypatch.setattr(readers, "reader_for", lambda path, kind: fast if kind == "fast" else spy)
    items = read_items(book)
    assert calls == [{"2"}]  # only the unsupported tune is parsed again
    assert [s.meta.collection_item for s in items if isinstance(s, Score)] == ["1", "2", "3"]
    second = items[1]
    assert isinstance(second, Score)
    assert second.report["reader_fallback:abc:voice-overlay"] == 1
    assert second.note_keys() == reference[1].note_keys()  # type: ignore[union-attr]
    assert not any(k.startswith("reader_fallback") for k in items[0].report)  # type: ignore[union-attr]


def test_reference_reader_on_request_never_calls_the_fast_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explodes(path: Path, *, expand_repeats: bool = False) -> list[Score | ItemFailure]:
        raise AssertionError("the fast reader was called")

    monkeypatch.setattr(readers, "reader_for", _fake_fast(explodes))
    (score,) = read_items(TEST_DATA / "edge_cases.musicxml", reader="reference")
    assert isinstance(score, Score) and score.notes


def test_music21_reads_only_the_named_tunes_of_a_book(tmp_path: Path) -> None:
    from pipeline.readers.music21_reader import read_music21

    book = tmp_path / "book.abc"
    book.write_text(BOOK)
    only = read_music21(book, only={"3"})
    assert [s.meta.collection_item for s in only if isinstance(s, Score)] == ["3"]
    whole = read_music21(book)
    assert only[0].note_keys() == whole[2].note_keys()  # type: ignore[union-attr]


def test_a_bug_in_the_fast_reader_falls_back_and_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def buggy(path: Path, *, expand_repeats: bool = False) -> list[Score | ItemFailure]:
        raise IndexError("list index out of range")

    monkeypatch.setattr(readers, "reader_for", _fake_fast(buggy))
    (score,) = read_items(TEST_DATA / "edge_cases.musicxml")
    assert isinstance(score, Score) and score.report["reader_fallback:error:IndexError"] == 1


def test_a_refusal_of_the_fast_reader_is_not_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuses(path: Path, *, expand_repeats: bool = False) -> list[Score | ItemFailure]:
        raise ScoreParseError(f"{path}: too large", "too_large")

    monkeypatch.setattr(readers, "reader_for", _fake_fast(refuses))
    with pytest.raises(ScoreParseError, match="too large"):
        read_items(TEST_DATA / "edge_cases.musicxml")


def test_when_the_reference_fails_too_the_other_pieces_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = tmp_path / "book.abc"
    book.write_text(BOOK)
    reference = readers.reader_for(book, "reference")(book)

    def fast(path: Path, *, expand_repeats: bool = False) -> list[Score | ItemFailure]:
        return [reference[0], ItemFailure("2", "unsupported:abc:x", "X:2 uses it"), reference[2]]

    def broken(path: Path, *, expand_repeats: bool = False, only: object = None) -> Any:
        raise ScoreParseError(f"{path}: music21 could not parse it", "parse_error")

    monkeypatch.setattr(
        readers, "reader_for", lambda path, kind: fast if kind == "fast" else broken
    )
    items = read_items(book)
    assert [type(i).__name__ for i in items] == ["Score", "ItemFailure", "Score"]
    failure = items[1]
    assert isinstance(failure, ItemFailure) and "reference reader: " in failure.detail


def test_a_book_reusing_an_x_number_keeps_both_tunes_in_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = tmp_path / "book.abc"
    book.write_text(BOOK.replace("X:2", "X:1").replace("X:3", "X:1"))
    reference = readers.reader_for(book, "reference")(book)
    assert [s.meta.title for s in reference if isinstance(s, Score)] == ["One", "Two", "Three"]

    def fast(path: Path, *, expand_repeats: bool = False) -> list[Score | ItemFailure]:
        return [ItemFailure("1", "unsupported:abc:x", "no")] * 3

    monkeypatch.setattr(readers, "reader_for", _fake_fast(fast))
    titles = [s.meta.title for s in read_items(book) if isinstance(s, Score)]
    assert titles == ["One", "Two", "Three"]
