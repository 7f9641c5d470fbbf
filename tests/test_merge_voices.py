"""Ingest's voice policy: merge the voices of a piece, or quarantine them (stages.merge_voices)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from pipeline.readers import read_items
from pipeline.readers.common import ItemFailure, abc_text
from pipeline.readers.voices import find_voice_groups
from pipeline.score import Score
from pipeline.stages.merge_voices import (
    VOICE_OF_PIECE,
    VOICES_DISAGREE,
    VOICES_INCOMPLETE,
    MergedVoice,
    Resolved,
    resolve_voices,
)
from pipeline.tokenizer import Tokenizer
from pipeline.tokenizer.chain import tokenize_score
from tests.test_voices import JOSQUIN, JOSQUIN_VOICES, tune


def resolved(path: Path, *, merge: bool) -> tuple[list[Score | ItemFailure], list[Resolved]]:
    """The reader's items of `path` and what the voice policy makes of them."""
    items = read_items(path)
    return items, resolve_voices(items, find_voice_groups(abc_text(path), items), merge=merge)


def write_book(tmp_path: Path, *tunes: str) -> Path:
    path = tmp_path / "book.abc"
    path.write_text("".join(tunes))
    return path


def test_the_josquin_books_are_8_multi_voice_pieces_not_29_tunes() -> None:
    pieces = 0
    for path in JOSQUIN:
        items, out = resolved(path, merge=True)
        voices = [i for i in items if isinstance(i, Score)]
        assert len(voices) == len(items) == len(out)
        (merged,) = [s for s in out if isinstance(s, Score)]
        assert out[0] is merged  # the first tune's place, hence its item and id
        assert merged.meta.collection_item == "1" and merged.meta.title == voices[0].meta.title
        names = [n or f"Voice {k}" for k, n in enumerate(JOSQUIN_VOICES[path.name], 1)]
        assert [p.name for p in merged.parts] == names
        assert [p.index for p in merged.parts] == list(range(len(voices)))
        assert merged.bars == voices[0].bars
        assert len(merged.notes) == sum(len(v.notes) for v in voices)
        for k, voice in enumerate(voices):  # each part is its voice, note for note
            assert [n for n in merged.notes if n.part == k] == [
                n._replace(part=k) for n in voice.notes
            ]
        assert merged.report["voices_merged"] == len(voices)
        assert merged.report["bars_from_time_signatures"] == len(voices)  # summed
        assert out[1:] == [MergedVoice(str(k), 0, name) for k, name in enumerate(names[1:], 2)]
        pieces += 1
    assert pieces == 8


def test_a_merged_piece_goes_through_meter_quantize_and_tokenize(tokenizer: Tokenizer) -> None:
    """The five-voice Déploration: 2/2 bars become 4/4, the parts one token stream."""
    path = next(p for p in JOSQUIN if p.name.startswith("laDeploration"))
    _, out = resolved(path, merge=True)
    merged = out[0]
    assert isinstance(merged, Score)
    result = tokenize_score(merged, tokenizer)
    decoded = tokenizer.decode(result.ids)
    assert decoded.meters() == result.score.meters() == ["4/4"] * len(merged.bars)
    assert len(result.score.notes) == len(merged.notes)
    # Two voices on the same pitch at once are one event (counted), nothing else is lost.
    assert len(result.score.notes) - len(decoded.notes) == result.report.get("unison_merged", 0)
    assert {n.pitch for n in decoded.notes} == {n.pitch for n in result.score.notes}


def test_voices_whose_bars_disagree_are_quarantined_never_merged(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        tune("1", "T:Song", "T:Cantus"),
        tune("2", "T:Song", "T:Tenor", body="CDEF|GABc|C4|"),  # a bar more
        tune("3", "T:Other"),
    )
    _, out = resolved(book, merge=True)
    assert [type(x).__name__ for x in out] == ["ItemFailure", "ItemFailure", "Score"]
    failures = [x for x in out if isinstance(x, ItemFailure)]
    assert {f.reason for f in failures} == {VOICES_DISAGREE}
    assert failures[1].item == "2"
    assert "X:2 (Tenor) has 3 bars, X:1 (Cantus) 2" in failures[1].detail


def test_voices_whose_meters_disagree_are_quarantined(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        tune("1", "T:Song", "T:Cantus", body="CDE|FGA|"),
        tune("2", "T:Song", "T:Tenor", body="CDE|FGA|").replace("M:4/4", "M:3/4"),
    )
    _, out = resolved(book, merge=True)
    assert all(isinstance(x, ItemFailure) and x.reason == VOICES_DISAGREE for x in out)
    assert "bar 1 of X:2 (Tenor) is 3/4 of 3 quarters" in out[1].detail  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("second_titles", "message"),
    [
        (["T:Cantus", "T:Tenor", "T:Tenor"], "voice Tenor is X:2 and X:3"),
        ([None, "T:Tenor", None], "2 tunes name no voice (X:1, X:3)"),
    ],
)
def test_repeated_or_missing_voice_names_are_quarantined(
    tmp_path: Path, second_titles: list[str | None], message: str
) -> None:
    tunes = [
        tune(str(k), "T:Song", *([second] if second else []))
        for k, second in enumerate(second_titles, 1)
    ]
    _, out = resolved(write_book(tmp_path, *tunes), merge=True)
    assert all(isinstance(x, ItemFailure) and x.reason == VOICES_DISAGREE for x in out)
    assert message in out[0].detail  # type: ignore[union-attr]


def test_a_voice_that_cannot_be_read_leaves_its_piece_incomplete(tmp_path: Path) -> None:
    book = write_book(
        tmp_path,
        tune("1", "T:Song", "T:Cantus"),
        tune("2", "T:Song", "T:Tenor").replace("M:4/4", "M:9/0"),
        tune("3", "T:Song", "T:Bassus"),
    )
    _, out = resolved(book, merge=True)
    reasons = [x.reason for x in out if isinstance(x, ItemFailure)]
    assert reasons == [VOICES_INCOMPLETE, "parse_error", VOICES_INCOMPLETE]
    assert "X:2 (Tenor) of 'Song' could not be read" in out[0].detail  # type: ignore[union-attr]


def test_without_the_option_voices_are_quarantined_and_other_tunes_kept() -> None:
    for path in JOSQUIN:
        items, out = resolved(path, merge=False)
        assert len(out) == len(items)
        assert {x.reason for x in out if isinstance(x, ItemFailure)} == {VOICE_OF_PIECE}
        assert "declare group_voices: true" in out[-1].detail  # type: ignore[union-attr]


def test_a_tune_with_parts_of_its_own_keeps_them_as_named_parts(tmp_path: Path) -> None:
    duo = tune("2", "T:Song", "T:Tenor", body="V:1\nCDEF|GABc|\nV:2\nC,D,E,F,|G,A,B,C|")
    book = write_book(tmp_path, tune("1", "T:Song", "T:Cantus"), duo)
    items, out = resolved(book, merge=True)
    merged = out[0]
    assert isinstance(merged, Score) and isinstance(items[1], Score)
    assert len(items[1].parts) == 2
    assert [p.name for p in merged.parts] == ["Cantus", "Tenor: 1", "Tenor: 2"]
    assert out[1] == MergedVoice("2", 0, "Tenor")
    assert {n.part for n in merged.notes} == {0, 1, 2}
    assert merged.end == Fraction(8)
