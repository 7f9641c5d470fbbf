"""Finding the tunes of an ABC book that are the voices of one piece (pipeline.readers.voices)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.corpora import music21_corpus_root
from pipeline.readers import read_items
from pipeline.readers.common import ItemFailure, abc_text
from pipeline.readers.voices import VOICE_WORD, Voice, VoiceGroup, find_voice_groups
from tests.helpers import m21_path

JOSQUIN = sorted((music21_corpus_root() / "josquin").glob("*.abc"))
# What the books hold: 29 tunes, the voices of 8 pieces (one duo, three trios, two four-voice
# and two five-voice pieces); "" where the book names no voice.
JOSQUIN_VOICES = {
    "4vPerIlludAveProlatum.abc": ["Superius", "Altus"],
    "adieuMesAmours.abc": ["Cantus", "Altus", "Tenor", "Bassus"],
    "fortunaDunGranTempo.abc": ["", "Tenor", "Bassus"],
    "laDeplorationDeLaMorteDeJohannesOckeghem.abc": [
        "Cantus (line 1)",
        "Altus (line 2)",
        "Quintus (Third Line)",
        "Tenor",
        "Bassus",
    ],
    "laPlusDesPlus.abc": ["", "Tenor", "Contra"],
    "milleRegrets.abc": ["Superius", "Contratenor", "Tenor", "Bassus"],
    "oVenusBant.abc": ["", "Tenor", "Contra"],
    "petiteCamusette.abc": ["Superius", "Contratenor", "Quinta Pars", "Tenor", "Bassus"],
}


def tune(number: str, *fields: str, body: str = "CDEF|GABc|") -> str:
    """One tune of a hand-made book: `X:<number>`, the given fields, K:C and `body`."""
    return "\n".join([f"X:{number}", *fields, "M:4/4", "L:1/4", "K:C", body, ""])


def test_every_josquin_book_is_one_piece_of_named_voices() -> None:
    assert [p.name for p in JOSQUIN] == sorted(JOSQUIN_VOICES)
    tunes = 0
    for path in JOSQUIN:
        items = read_items(path)
        (group,) = find_voice_groups(abc_text(path), items)
        assert [v.name for v in group.voices] == JOSQUIN_VOICES[path.name], path.name
        assert [v.index for v in group.voices] == list(range(len(items)))
        assert [v.number for v in group.voices] == [str(k + 1) for k in range(len(items))]
        assert group.title == items[0].meta.title  # type: ignore[union-attr]
        tunes += len(items)
    assert tunes == 29


def test_a_voice_named_in_the_body_counts() -> None:
    """`4vPerIlludAveProlatum.abc` names its voices in a `T:` after `K:`."""
    text = abc_text(JOSQUIN[0])
    assert "K:G mix\nT:Superius" in text
    (group,) = find_voice_groups(text, [])
    assert [v.name for v in group.voices] == ["Superius", "Altus"]
    assert [v.index for v in group.voices] == [None, None]  # no reader items given


def test_ordinary_books_hold_no_voice_groups() -> None:
    """Aird's Airs repeats titles ("For the Violin", "For the Ger. Flute" settings), and has
    a tune with one `V:` voice: none of it is a voice group."""
    for name in ("airdsAirs/book1.abc", "airdsAirs/book2.abc", "airdsAirs/book6.abc"):
        assert find_voice_groups(abc_text(m21_path(name)), []) == [], name


def test_settings_variants_and_sections_are_not_voices() -> None:
    book = "".join(
        [
            tune("1", "T:John Anderson my Jo", "T:For the Ger. Flute."),
            tune("2", "T:John Anderson my Jo", "T:For the Violin or Fife."),
            tune("3", "T:Miserere", "T:Secunda pars"),
            tune("4", "T:Miserere", "T:Part 2"),
            tune("5", "T:Reel", "V:1"),
            tune("6", "T:Reel", "V:1"),
            tune("7", "T:Tenor"),  # a title that is a voice word is no second title
            tune("8", "T:Tenor"),
        ]
    )
    assert find_voice_groups(book, []) == []


def test_voices_named_by_v_fields_and_titles_are_compared_loosely() -> None:
    book = "".join(
        [
            tune("1", "T:Canon a 2", 'V:S name="Soprano I" clef=treble'),
            tune("2", "T:Canon a 2.", "V:B nm=Bass"),
            tune("3", "T:  canon  A 2", "V:T"),
            tune("4", "T:Other"),
        ]
    )
    (group,) = find_voice_groups(book, [])
    assert group == VoiceGroup(
        "Canon a 2",
        (Voice("1", "Soprano I", None), Voice("2", "Bass", None), Voice("3", "T", None)),
    )


def test_a_tune_with_two_voices_of_its_own_names_none() -> None:
    book = tune("1", "T:Duo", "T:Cantus") + tune("2", "T:Duo", "V:1", "V:2")
    (group,) = find_voice_groups(book, [])
    assert [v.name for v in group.voices] == ["Cantus", ""]


def test_voices_tie_to_the_readers_items_by_number_then_order(tmp_path: Path) -> None:
    """A number used twice pairs in order; a tune that failed is an item too; music21's items
    drop leading zeros (`X:012` is 12)."""
    book = "".join(
        [
            tune("5", "T:Other"),
            tune("012", "T:Song", "T:Tenor"),
            tune("5", "T:Song", "T:Bassus"),
            tune("7", "T:Song", "T:Altus").replace("M:4/4", "M:9/0"),
        ]
    )
    path = tmp_path / "book.abc"
    path.write_text(book)
    items = read_items(path)
    assert isinstance(items[3], ItemFailure) and items[3].reason == "parse_error"
    (group,) = find_voice_groups(book, items)
    assert [(v.number, v.index) for v in group.voices] == [("012", 1), ("5", 2), ("7", 3)]
    as_music21_numbers = [items[0], ItemFailure("12", "parse_error", ""), *items[2:]]
    (group,) = find_voice_groups(book, as_music21_numbers)
    assert [v.index for v in group.voices] == [1, 2, 3]
    (group,) = find_voice_groups(book, items[:2])  # the reader gave no item for X:5 and X:7
    assert [v.index for v in group.voices] == [1, None, None]


@pytest.mark.parametrize(
    ("title", "voice"),
    [
        ("Cantus", True),
        ("Quinta Pars", True),
        ("Voice 3", True),
        ("bassus ", True),
        ("Contratenor", True),
        ("Bass", True),
        ("Bassoon", False),
        ("Secunda pars", False),
        ("Part 2", False),
        ("For the Violin", False),
    ],
)
def test_voice_words(title: str, voice: bool) -> None:
    assert bool(VOICE_WORD.match(title)) is voice
