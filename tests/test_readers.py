from __future__ import annotations

from fractions import Fraction as F
from pathlib import Path

import pytest
from miditoolkit import Instrument, MidiFile, TempoChange, TimeSignature
from miditoolkit import Note as MidiNote

from pipeline.errors import ScoreParseError
from pipeline.readers import SUPPORTED_EXTENSIONS, ItemFailure, read_items, read_scores
from tests.helpers import TEST_DATA, m21_path, read_one


def test_hand_made_musicxml_edge_cases() -> None:
    s = read_one(TEST_DATA / "edge_cases.musicxml")
    assert s.meta.title == "Edge cases" and s.meta.composer == "Test Composer"
    assert s.bars[0].pickup and s.bars[0].length == 1
    assert [str(b.meter) for b in s.bars] == ["4/4"] * 4
    # The grace note is dropped and counted; the chord is split; the tie is one note.
    assert s.report["grace_dropped"] == 1
    assert s.report["chords_split"] == 1
    assert s.report["ties_merged"] == 1
    assert (F(1), 72, F(2)) in s.note_keys() and (F(1), 79, F(2)) in s.note_keys()
    assert (F(4), 65, F(2)) in s.note_keys()  # F4 quarter tied to F4 quarter
    assert [n.onset for n in s.notes if n.duration == F(1, 3)] == [F(3), F(10, 3), F(11, 3)]
    assert s.tempos[0].bpm == 90.0


def test_abc_collection_gives_one_score_per_tune_with_x_number() -> None:
    scores = read_scores(TEST_DATA / "two_tunes.abc")
    assert [s.meta.id for s in scores] == ["two_tunes.abc#X:1", "two_tunes.abc#X:7"]
    first, second = scores
    assert first.bars[0].pickup and first.bars[0].length == 1
    # The second tune has no bar lines music21 turns into measures: bars follow its 5/4 signature.
    assert second.meters() == ["5/4", "5/4"] and not second.bars[0].pickup


def test_real_pickup_detected_by_length(tmp_path: Path) -> None:
    s = read_one(m21_path("bach/bwv66.6.mxl"))
    assert s.bars[0].pickup and s.bars[0].length == 1
    assert not any(b.pickup for b in s.bars[1:])
    assert s.meta.id == "bwv66.6.mxl" and s.key == "F# minor"


def test_abc_first_bar_numbered_zero_is_not_a_pickup_when_full() -> None:
    # music21's ABC reader numbers every first bar 0; X:203's first bar is a real 3-quarter pickup
    # while a full first bar must not be flagged.
    scores = read_scores(m21_path("essenFolksong/ballad40.abc"))
    x203 = next(s for s in scores if s.meta.collection_item == "203")
    assert x203.meta.id == "ballad40.abc#X:203"
    assert x203.bars[0].pickup and x203.bars[0].length == 3
    full_first = [s for s in scores if s.bars and s.bars[0].length == s.bars[0].meter.length]
    assert full_first and not any(s.bars[0].pickup for s in full_first)


def test_meter_changes_read_bar_by_bar() -> None:
    s = read_one(m21_path("bach/bwv171.6.mxl"))
    meters = s.meters()
    first_34 = meters.index("3/4")
    last_34 = len(meters) - 1 - meters[::-1].index("3/4")
    assert "4/4" in meters[:first_34] and "4/4" in meters[last_34 + 1 :]


@pytest.mark.corpus
def test_grace_notes_and_ties_across_bar_lines_in_opus133() -> None:
    s = read_one(m21_path("beethoven/opus133.mxl"))
    assert s.report["grace_dropped"] > 100
    assert s.report["ties_merged"] > 500
    bar_starts = {b.start for b in s.bars}
    crossing = [n for n in s.notes if any(n.onset < b < n.end for b in bar_starts)]
    assert len(crossing) > 100  # merged ties now sound across bar lines as one note


def test_tuplets_keep_exact_onsets() -> None:
    s = read_one(m21_path("chopin/mazurka06-2.krn"))
    assert any(n.onset.denominator % 3 == 0 for n in s.notes)
    assert s.report["chords_split"] > 0


def _midi(
    tmp_path: Path,
    name: str,
    signatures: list[tuple[int, int, int]],
    notes: list[tuple[int, int, int]],
) -> Path:
    midi = MidiFile(ticks_per_beat=480)
    piano = Instrument(program=0, name="piano")
    piano.notes = [MidiNote(90, p, s, e) for p, s, e in notes]
    drums = Instrument(program=0, is_drum=True, name="drums")
    drums.notes = [MidiNote(100, 36, 0, 240), MidiNote(100, 38, 480, 720)]
    midi.instruments = [piano, drums]
    midi.time_signature_changes = [TimeSignature(n, d, t) for n, d, t in signatures]
    midi.tempo_changes = [TempoChange(100.0, 0), TempoChange(60.0, 1920)]
    path = tmp_path / name
    midi.dump(str(path))
    return path


def test_midi_signatures_tempo_drums_and_zero_length(tmp_path: Path) -> None:
    path = _midi(
        tmp_path,
        "a.mid",
        [(3, 4, 0), (6, 8, 1440 * 2)],
        [(60, 0, 480), (62, 480, 480), (64, 720, 1000), (65, 1440 * 2 + 240, 1440 * 2 + 480)],
    )
    (s,) = read_scores(path)
    assert s.report["unpitched_dropped"] == 2
    # miditoolkit itself discards the zero-length note (62) when it pairs note-on and note-off.
    assert 62 not in {n.pitch for n in s.notes}
    assert [(n.onset, n.pitch, n.duration) for n in s.notes] == [
        (F(0), 60, F(1)),
        (F(3, 2), 64, F(7, 12)),
        (F(13, 2), 65, F(1, 2)),
    ]
    assert s.meters()[:3] == ["3/4", "3/4", "6/8"]
    assert [t.bpm for t in s.tempos] == [100.0, 60.0]
    assert s.parts[1].is_drum


def test_midi_short_first_signature_is_a_pickup_of_the_next_meter(tmp_path: Path) -> None:
    path = _midi(tmp_path, "p.mid", [(1, 4, 0), (4, 4, 480)], [(67, 0, 480), (72, 480, 960)])
    (s,) = read_scores(path)
    assert s.bars[0].pickup and s.bars[0].length == 1 and str(s.bars[0].meter) == "4/4"
    assert s.report["pickup_meter_from_next_bar"] == 1


def test_midi_without_time_signature_defaults_to_4_4(tmp_path: Path) -> None:
    import mido

    # Written with mido: miditoolkit's writer would add a 4/4 signature of its own.
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    track.append(mido.Message("note_on", note=60, velocity=90, time=0))
    track.append(mido.Message("note_off", note=60, velocity=0, time=480 * 9))
    midi.tracks.append(track)
    path = tmp_path / "n.mid"
    midi.save(str(path))
    (s,) = read_scores(path)
    assert s.report["default_meter"] == 1 and set(s.meters()) == {"4/4"}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.mid", "empty"),
        ("empty.musicxml", "empty"),
        ("truncated.mid", "not a readable MIDI file"),
        ("malformed.musicxml", "not well-formed XML"),
        ("notes.txt", "unsupported file type '.txt'"),
        ("missing.mxl", "no such file"),
    ],
)
def test_bad_input_raises_score_parse_error_naming_the_file(name: str, message: str) -> None:
    with pytest.raises(ScoreParseError, match=message) as info:
        read_scores(TEST_DATA / name)
    assert name in str(info.value)


def test_supported_extensions() -> None:
    assert set(SUPPORTED_EXTENSIONS) == {
        ".xml",
        ".musicxml",
        ".mxl",
        ".krn",
        ".abc",
        ".mid",
        ".midi",
    }


def test_repeats_kept_as_written_unless_asked() -> None:
    path = m21_path("bach/bwv66.6.mxl")
    as_written = read_one(path)
    expanded = read_scores(path, expand_repeats=True)[0]
    assert expanded.report["repeats_expanded"] == 1
    assert len(expanded.notes) >= len(as_written.notes)


def test_one_bad_tune_does_not_lose_the_book() -> None:
    items = read_items(TEST_DATA / "book_with_bad_tune.abc")
    scores = [i for i in items if not isinstance(i, ItemFailure)]
    failures = [i for i in items if isinstance(i, ItemFailure)]
    assert [s.meta.collection_item for s in scores] == ["1", "3"]
    assert [(f.item, f.reason) for f in failures] == [("2", "parse_error")]
    assert scores[1].meters() == ["6/8", "6/8"]  # the header (L:1/8) applies to every tune
    with pytest.raises(ScoreParseError, match="1 of 3 pieces cannot be read, first X:2"):
        read_scores(TEST_DATA / "book_with_bad_tune.abc")


@pytest.mark.parametrize(
    ("suffix", "head"),
    [
        (".krn", b"**kern\n*M4/4\n4c\n"),
        (".abc", b"X:1\nT:t\nK:C\nCDEF|\n"),
        (".musicxml", b'<?xml version="1.0"?>\n<score-partwise>'),
        (".mid", b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk"),
    ],
)
def test_a_sparse_huge_file_is_refused_from_its_size(
    suffix: str, head: bytes, tmp_path: Path
) -> None:
    import resource
    import time

    path = tmp_path / f"sparse{suffix}"
    with path.open("wb") as fh:
        fh.write(head)
        fh.truncate(2 << 30)  # 2 GiB that cost no disk
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(ScoreParseError) as refused:
        read_items(str(path))
    assert refused.value.reason == "too_large"
    assert time.monotonic() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB


def test_read_capped_reads_a_file_that_grew_since_its_size_up_to_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read is sized to the file; past that size it reads on, and stops past the limit."""
    import os

    from pipeline.readers import common

    path = tmp_path / "grown.mid"
    path.write_bytes(bytes(range(100)))
    stale = os.stat_result((0, 0, 0, 0, 0, 0, 10, 0, 0, 0))  # st_size 10: as before it grew
    monkeypatch.setattr(common.os, "fstat", lambda fd: stale)
    assert common.read_capped(path, 200, "MIDI file") == bytes(range(100))
    with pytest.raises(ScoreParseError, match="the MIDI file is 100 bytes") as refused:
        common.read_capped(path, 99, "MIDI file")
    assert refused.value.reason == "too_large"
