from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from pipeline.errors import GnmError
from pipeline.music.meter import normalize_meters
from pipeline.readers import read_scores
from pipeline.score import Note
from pipeline.tokenizer import Tokenizer
from pipeline.tokenizer.chain import tokenize_score
from pipeline.writers import key_signature, write_score
from tests.helpers import TEST_DATA, m21_path, read_one


@pytest.mark.parametrize("ext", [".mid", ".musicxml", ".mxl"])
@pytest.mark.parametrize(
    "source",
    [
        "bach/bwv66.6.mxl",
        pytest.param("chopin/mazurka06-2.krn", marks=pytest.mark.corpus),  # over 1 s a format
        "essenFolksong/ballad20.abc",
    ],
    ids=lambda s: s.split("/")[-1],
)
def test_written_files_read_back_to_the_same_notes_and_bars(
    tmp_path: Path, tokenizer: Tokenizer, ext: str, source: str
) -> None:
    decoded = tokenizer.decode(tokenize_score(read_one(m21_path(source)), tokenizer).ids)
    path = write_score(decoded, tmp_path / f"out{ext}")
    (back,) = read_scores(path)
    assert back.note_keys() == decoded.note_keys()
    assert back.meters() == decoded.meters()


def test_unknown_output_extension(tmp_path: Path) -> None:
    with pytest.raises(GnmError, match="cannot write '.wav'"):
        write_score(read_one(TEST_DATA / "edge_cases.musicxml"), tmp_path / "x.wav")


def test_midi_keeps_pickups_short_bars_and_unisons(tmp_path: Path) -> None:
    for source in ("bach/bwv66.6.mxl", "chopin/mazurka06-2.krn"):
        raw = read_one(m21_path(source))
        (back,) = read_scores(write_score(raw, tmp_path / "raw.mid"))
        assert back.note_keys() == raw.note_keys()
        assert [b.length for b in back.bars] == [b.length for b in raw.bars], source
        assert back.bars[0].pickup == raw.bars[0].pickup


def test_musicxml_refuses_short_bars_but_keeps_unisons(tmp_path: Path) -> None:
    raw = read_one(m21_path("bach/bwv66.6.mxl"))
    with pytest.raises(GnmError, match="bar 0 is 1 quarters of 4/4"):
        write_score(raw, tmp_path / "raw.musicxml")
    normalised = normalize_meters(raw)
    assert len(set(normalised.note_keys())) < len(normalised.notes)  # alto and tenor in unison
    (back,) = read_scores(write_score(normalised, tmp_path / "n.musicxml"))
    assert back.note_keys() == normalised.note_keys()


def test_musicxml_is_a_piano_score_on_one_grand_staff(tmp_path: Path, tokenizer: Tokenizer) -> None:
    """A four-voice chorale is engraved as one part: treble and bass staves, several voices each."""
    decoded = tokenizer.decode(
        tokenize_score(read_one(m21_path("bach/bwv66.6.mxl")), tokenizer).ids
    )
    text = write_score(decoded, tmp_path / "chorale.musicxml").read_text()
    assert text.count("<part id=") == 1 and "<staves>2</staves>" in text
    assert "<sign>G</sign>" in text and "<sign>F</sign>" in text
    assert "<voice>2</voice>" in text
    (back,) = read_scores(tmp_path / "chorale.musicxml")
    assert back.note_keys() == decoded.note_keys()


def test_the_key_signature_is_the_best_fitting_key_and_black_keys_are_spelled_to_match(
    tmp_path: Path, tokenizer: Tokenizer
) -> None:
    chorale = read_one(m21_path("bach/bwv66.6.mxl"))  # F-sharp minor: three sharps
    assert key_signature(chorale.notes) == 3
    scale = [
        Note(Fraction(i), p, Fraction(1)) for i, p in enumerate((63, 65, 67, 68, 70, 72, 74, 75))
    ]
    assert key_signature(scale) == -3  # E-flat major
    assert key_signature([]) == 0
    decoded = tokenizer.decode(tokenize_score(chorale, tokenizer).ids)
    text = write_score(decoded, tmp_path / "chorale.musicxml").read_text()
    assert "<fifths>3</fifths>" in text and "<alter>-1</alter>" not in text


def test_every_pitch_is_spelled_in_the_key_as_a_pitch_of_the_same_number() -> None:
    from pipeline.writers import _spelled, spelling

    for sharps in range(-5, 7):
        for minor in (False, True):
            for midi in range(128):
                assert _spelled(midi, sharps, minor).midi == midi, (midi, sharps, minor)
    assert spelling(61, -1, True)[:2] == ("C", 1)  # the leading tone of D minor
    assert spelling(66, -2, True)[:2] == ("F", 1)  # of G minor
    assert spelling(70, 0, False)[:2] == ("B", -1)  # B-flat in C major
    assert spelling(65, 6, False)[:2] == ("E", 1)  # E-sharp in F-sharp major
    assert spelling(1, 2, False) == ("C", 1, -1)  # octave -1 (MIDI 0-11) is an octave too
