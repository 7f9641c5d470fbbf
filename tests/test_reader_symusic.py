"""The symusic MIDI reader gives exactly miditoolkit's score (`read_midi`), quirks included."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import GnmError, ScoreParseError, Unsupported
from pipeline.executor import Limits, run_isolated
from pipeline.readers.beats import apply_beat_file
from pipeline.readers.midi_reader import read_midi
from pipeline.readers.symusic_reader import read_midi_fast
from pipeline.synthetic import midi_bytes, piece, vlq
from tests.hostile import HOSTILE, midi_sparse, mutate

DATA = Path(__file__).parent / "data"
POP909 = Path(__file__).resolve().parents[2] / "shared" / "data" / "pop909"
END = b"\x00\xff\x2f\x00"


def track(*events: tuple[int, bytes], end: bool = True) -> bytes:
    """An MTrk chunk from (delta ticks, event bytes) pairs."""
    body = b"".join(vlq(delta) + data for delta, data in events) + (END if end else b"")
    return b"MTrk" + struct.pack(">I", len(body)) + body


def midi(*tracks: bytes, division: int = 480, n_tracks: int | None = None) -> bytes:
    count = len(tracks) if n_tracks is None else n_tracks
    return b"MThd" + struct.pack(">IHHH", 6, 1, count, division) + b"".join(tracks)


def on(pitch: int, channel: int = 0, velocity: int = 64) -> bytes:
    return bytes([0x90 | channel, pitch, velocity])


def off(pitch: int, channel: int = 0) -> bytes:
    return bytes([0x80 | channel, pitch, 0])


def meta(kind: int, payload: bytes) -> bytes:
    return bytes([0xFF, kind]) + vlq(len(payload)) + payload


def tempo(micros: int) -> bytes:
    return meta(0x51, micros.to_bytes(3, "big"))


def signature(num: int, den_power: int) -> bytes:
    return meta(0x58, bytes([num, den_power, 24, 8]))


def key(sharps: int, minor: int) -> bytes:
    return meta(0x59, bytes([sharps & 0xFF, minor]))


def outcome(reader: object, path: Path) -> object:
    """The score, or the error's class and reason."""
    try:
        return reader(path)[0]  # type: ignore[operator]
    except GnmError as exc:
        return (type(exc).__name__, getattr(exc, "reason", None))


def assert_same(path: Path) -> None:
    fast, reference = outcome(read_midi_fast, path), outcome(read_midi, path)
    assert fast == reference, f"{path.name}: fast {fast!r}\nreference {reference!r}"


NOTE = ((0, on(60)), (480, off(60)))
CASES: dict[str, bytes] = {
    "one_note": midi(track(*NOTE)),
    # a note-off on its note-on's tick: a zero-length note (dropped, counted); the next note-off
    # closes the next note-on, and the last one is spurious
    "zero_length": midi(
        track((0, on(60)), (0, off(60)), (16, on(60)), (32, off(60)), (32, off(60)))
    ),
    "overlapping_same_pitch": midi(
        track((0, on(60, velocity=30)), (100, on(60, velocity=90)), (100, off(60)), (100, off(60)))
    ),
    "velocity_zero_note_off": midi(track((0, on(60)), (240, on(60, velocity=0)))),
    # channel 1 closes first: miditoolkit's part order is creation order, symusic's (channel, program)
    "channel_order": midi(
        track((0, on(60, 1)), (0, on(62, 0)), (240, off(60, 1)), (240, off(62, 0)))
    ),
    "drums": midi(track((0, on(36, 9)), (120, off(36, 9)), (0, on(60)), (120, off(60)))),
    "names_and_tracks": midi(
        track((0, meta(0x03, b"tempo map")), (0, tempo(500000))),
        track((0, meta(0x03, b"Piano")), *NOTE),
        track((0, meta(0x03, b"Caf\xe9")), *NOTE),
        track((0, meta(0x03, "Café".encode())), *NOTE),
    ),
    # a tempo at tick 0 in a later track discards the earlier track's changes
    "tempo_reset_by_later_track": midi(
        track((0, tempo(500000)), (960, tempo(400000)), (960, tempo(400000))),
        track((0, tempo(600000)), *NOTE),
    ),
    "tempo_repeated_value": midi(track((0, tempo(500000)), (480, tempo(500000)), *NOTE)),
    "time_signature_inside_bar": midi(
        track((0, signature(4, 2)), (960, signature(3, 4)), *NOTE, (4000, on(64)), (10, off(64)))
    ),
    "pickup_meter_from_next": midi(track((0, signature(1, 2)), (480, signature(4, 2)), *NOTE)),
    "simultaneous_signatures_last_wins": midi(
        track((0, signature(3, 2)), (0, signature(6, 3)), (0, signature(2, 2)), *NOTE)
    ),
    "signatures_in_two_tracks": midi(
        track((0, signature(3, 2)), (0, key(-2, 1))), track((0, signature(2, 2)), *NOTE)
    ),
    "key_minor": midi(track((0, key(-5, 1)), *NOTE)),
    "key_sharp_major": midi(track((0, key(6, 0)), *NOTE)),
    "no_notes": midi(track((0, tempo(500000)))),
    "division_1": midi(track((0, on(60)), (3, off(60))), division=1),
    "division_32767": midi(track(*NOTE), division=0x7FFF),
    "running_status": midi(
        track((0, on(60)), (0, b"\x40\x50"), (240, b"\x3c\x00"), (0, b"\x40\x00"))
    ),
    "extra_undeclared_track": midi(track(*NOTE), track((0, on(70)), (5, off(70))), n_tracks=1),
    # refused by mido, so by both readers
    "bad_key": midi(track((0, key(9, 0)), *NOTE)),
    "numerator_zero": midi(track((0, signature(0, 2)), *NOTE)),
    "tempo_zero": midi(track((0, tempo(0)), *NOTE)),
    "empty_track": midi(track(*NOTE), b"MTrk\x00\x00\x00\x00"),
    "no_tracks": midi(n_tracks=0),
    "missing_track": midi(track(*NOTE), n_tracks=2),
    "not_a_track_chunk": midi(b"XFIH\x00\x00\x00\x01\x00"),
    "smpte_division": midi(track(*NOTE), division=0xE728),
    "division_zero": midi(track(*NOTE), division=0),
    "undefined_status": midi(track((0, b"\xf4"), *NOTE)),
    "short_tempo": midi(track((0, meta(0x51, b"\x07\xa1")), *NOTE)),
    "short_time_signature": midi(track((0, meta(0x58, b"\x03\x02")), *NOTE)),
    "bad_smpte_frame_rate": midi(track((0, meta(0x54, b"\xe0\x00\x00\x00\x00")), *NOTE)),
    "data_byte_over_127": midi(track((0, b"\x90\x3c\x80"), *NOTE)),
    "running_status_without_status": midi(track((0, b"\x3c\x40"), *NOTE)),
    "two_names_before_notes": midi(track((0, meta(0x03, b"A")), (0, meta(0x03, b"B")), *NOTE)),
    # a name after the notes in a track without notes of its own, and program changes there
    "conductor_track_late_name": midi(
        track((0, tempo(500000)), (0, b"\xc0\x01"), (960, meta(0x03, b"x"))), track(*NOTE)
    ),
    # the full scan runs (non-ASCII name): running status resumes after a text event
    "running_status_after_meta": midi(
        track((0, meta(0x03, b"\xe9t\xe9")), (0, on(60)), (0, meta(0x01, b"x")), (240, b"\x3c\x00"))
    ),
    "tempo_sharing_a_tick": midi(
        track(
            (0, tempo(500000)), (480, tempo(400000)), (0, tempo(300000)), (0, tempo(400000)), *NOTE
        )
    ),
    "long_gap_bytes_look_like_program_change": midi(
        track((0, b"\xc0\x05"), *NOTE, (8200, on(62)), (10, off(62)))
    ),
}
# Files where only mido's event-level parse tells: the fast reader hands them to the reference.
FALLBACKS: dict[str, tuple[bytes, str]] = {
    "events_after_end_of_track": (midi(track(*NOTE, (0, END[1:]), (0, on(62)), (5, off(62)))), "midi:events-after-end-of-track"),
    # miditoolkit files a note under the program at its note-off, symusic at its note-on
    "program_change_while_sounding": (midi(track((0, on(60)), (10, b"\xc0\x05"), (10, off(60)))), "midi:program-change-after-notes"),
    "tied_first_note_offs": (midi(track((0, on(60, 1)), (0, on(62)), (240, off(60, 1)), (0, off(62)))), "midi:instrument-order"),
    "track_name_after_notes": (midi(track((0, meta(0x03, b"A")), *NOTE, (0, meta(0x03, b"B")), *NOTE)), "midi:track-name-after-notes"),
    "five_byte_delta_time": (midi(track((0, on(60)), (10**9, off(60)))), "midi:variable-length-quantity"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_made_file_reads_as_miditoolkit_reads_it(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.mid"
    path.write_bytes(CASES[name])
    assert_same(path)


def test_hand_made_cases_cover_the_quirks(tmp_path: Path) -> None:
    """The cases above really exercise what they are named for (so that they can fail)."""
    read = {}
    for name in ("zero_length", "channel_order", "names_and_tracks", "tempo_reset_by_later_track"):
        path = tmp_path / f"{name}.mid"
        path.write_bytes(CASES[name])
        read[name] = read_midi_fast(path)[0]
    assert read["zero_length"].report["zero_duration_dropped"] == 1
    assert [n.duration * 480 for n in read["zero_length"].notes] == [32]
    assert [(n.pitch, n.part) for n in read["channel_order"].notes] == [(60, 0), (62, 1)]
    assert [p.name for p in read["names_and_tracks"].parts] == ["Piano", "Café", "CafÃ©"]
    assert [t.bpm for t in read["tempo_reset_by_later_track"].tempos] == [100.0]


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_what_only_mido_can_judge_falls_back(name: str, tmp_path: Path) -> None:
    data, what = FALLBACKS[name]
    path = tmp_path / f"{name}.mid"
    path.write_bytes(data)
    with pytest.raises(Unsupported) as caught:
        read_midi_fast(path)
    assert caught.value.what == what


@pytest.mark.parametrize("name", ["empty.mid", "truncated.mid"])
def test_broken_files_are_bad_midi(name: str) -> None:
    with pytest.raises(ScoreParseError) as caught:
        read_midi_fast(DATA / name)
    assert caught.value.reason == "bad_midi"
    assert_same(DATA / name)


@pytest.mark.parametrize("name", sorted(k for k in HOSTILE if k.startswith("midi_")))
def test_hostile_midi_is_read_or_refused_quickly(name: str, tmp_path: Path) -> None:
    path = HOSTILE[name](tmp_path)
    started = time.process_time()
    result = outcome(read_midi_fast, path)
    assert time.process_time() - started < 2
    if (
        name == "midi_huge_ticks"
    ):  # a 5-byte delta time, beyond symusic: the reference reader reads it
        assert result == ("Unsupported", None)
    else:
        assert_same(path)


def test_mutated_files_never_crash(tmp_path: Path) -> None:
    seed = midi_bytes(piece(5, 1))
    for k in range(60):
        path = tmp_path / f"{k}.mid"
        path.write_bytes(mutate(seed, k))
        try:
            read_midi_fast(path)
        except ScoreParseError as exc:
            assert exc.reason == "bad_midi"
        except Unsupported:
            pass


def test_known_difference_out_of_range_aftertouch(tmp_path: Path) -> None:
    """mido refuses any data byte over 127; symusic range-checks only what it keeps (not a
    key pressure), and the quick look cannot see it: this corrupt file is read."""
    path = tmp_path / "x.mid"
    path.write_bytes(midi(track((0, b"\xa0\x3c\x80"), *NOTE)))
    assert outcome(read_midi, path) == ("ScoreParseError", "bad_midi")
    assert len(read_midi_fast(path)[0].notes) == 1


def test_caches_are_bounded_and_harmless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fractions and runs of bars kept across files: small bounds cut and clear them."""
    from pipeline.readers import symusic_reader

    monkeypatch.setattr(symusic_reader, "CACHE_LIMIT", 3)
    monkeypatch.setattr(symusic_reader, "CACHE_SCALES", 1)
    monkeypatch.setattr(symusic_reader, "_FRACTIONS", {})
    monkeypatch.setattr(symusic_reader, "RUN_KEYS", 2)
    monkeypatch.setattr(symusic_reader, "RUN_LIMIT", 5)
    monkeypatch.setattr(symusic_reader, "_RUNS", {})
    for index in range(6):  # pieces of several meters and lengths
        path = tmp_path / f"{index}.mid"
        path.write_bytes(midi_bytes(piece(11, index)))
        assert_same(path)
        assert_same(path)  # read again: from the kept runs
        assert len(symusic_reader._FRACTIONS) == 1
        assert len(symusic_reader._RUNS) <= 2
        assert all(len(run) <= 5 for run in symusic_reader._RUNS.values())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0, 1, 7, 480, 2**31 - 1]),
            st.integers(0, 127),
            st.sampled_from([1, 2, 480, 2**24, 2**31 - 1, 2**41]),
            st.integers(1, 127),
            st.sampled_from([0, 1, 3, 2**16]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_note_order_is_lexsort_on_every_path(rows: list[tuple[int, ...]]) -> None:
    """One packed key, two, or five: the permutation is lexsort's, ties in given order."""
    import numpy as np

    from pipeline.readers.symusic_reader import _note_order

    onset, pitch, duration, velocity, part = (
        np.array(c, dtype=np.int64) for c in zip(*rows, strict=True)
    )
    expected = np.lexsort((part, velocity, duration, pitch, onset))
    assert _note_order(onset, pitch, duration, velocity, part).tolist() == expected.tolist()


def test_expand_repeats_has_no_meaning(tmp_path: Path) -> None:
    path = tmp_path / "x.mid"
    path.write_bytes(CASES["one_note"])
    assert read_midi_fast(path, expand_repeats=True) == read_midi_fast(path)


def test_output_passes_validate(tmp_path: Path) -> None:
    path = tmp_path / "x.mid"
    path.write_bytes(CASES["names_and_tracks"])
    score = read_midi_fast(path)[0]
    assert score.validate() is score


@pytest.mark.parametrize("index", range(6))
def test_synthetic_pieces(index: int, tmp_path: Path) -> None:
    path = tmp_path / f"{index}.mid"
    path.write_bytes(midi_bytes(piece(7, index)))
    assert_same(path)


@pytest.mark.skipif(not POP909.is_dir(), reason="POP909 is not in ../shared/data")
@pytest.mark.parametrize("number", ["001", "008", "222", "555", "909"])
def test_pop909_raw_and_after_the_beat_file(number: str) -> None:
    path = POP909 / number / f"{number}.mid"
    fast, reference = read_midi_fast(path)[0], read_midi(path)[0]
    assert fast == reference
    beats = path.parent / "beat_midi.txt"
    assert apply_beat_file(fast, beats) == apply_beat_file(reference, beats)


# -- random event streams: both readers agree, or the fast one hands the file over ----------------

EVENT = st.one_of(
    st.tuples(st.sampled_from([0x90, 0x80]), st.integers(0, 2), st.sampled_from([60, 62, 64])),
    st.tuples(st.sampled_from([0x90, 0x80]), st.integers(0, 2), st.sampled_from([60, 62, 64])),
    st.tuples(st.just(0xC0), st.integers(0, 2), st.sampled_from([0, 5])),
    st.tuples(st.just(0x99), st.just(0), st.just(36)),
    st.tuples(st.just(0xFF), st.just(0x51), st.sampled_from([400000, 500000])),
    st.tuples(st.just(0xFF), st.just(0x58), st.sampled_from([(3, 2), (4, 2), (6, 3), (1, 2)])),
    st.tuples(st.just(0xFF), st.just(0x59), st.sampled_from([(0, 0), (-3, 1)])),
    st.tuples(st.just(0xFF), st.sampled_from([0x01, 0x03]), st.sampled_from([b"a", b"\xe9"])),
)


def encode(event: tuple[int, int, object]) -> bytes:
    status, a, b = event
    if status == 0xFF:
        if a == 0x51:
            return tempo(int(b))  # type: ignore[call-overload]
        if a == 0x58:
            return signature(*b)  # type: ignore[misc]
        if a in (0x01, 0x03):
            return meta(a, b)  # type: ignore[arg-type]
        return key(*b)  # type: ignore[misc]
    if status == 0xC0:
        return bytes([0xC0 | a, int(b)])  # type: ignore[call-overload]
    return bytes([status | a, int(b), 0 if status == 0x80 else 50])  # type: ignore[call-overload]


TRACKS = st.lists(
    st.lists(st.tuples(st.sampled_from([0, 0, 0, 60, 240]), EVENT), min_size=1, max_size=14),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tracks=TRACKS)
def test_random_event_streams_agree(
    tracks: list[list[tuple[int, tuple[int, int, object]]]], tmp_path: Path
) -> None:
    path = tmp_path / "random.mid"
    path.write_bytes(midi(*(track(*((d, encode(e)) for d, e in t)) for t in tracks)))
    fast = outcome(read_midi_fast, path)
    if fast != ("Unsupported", None):  # handed to the reference reader: nothing to compare
        assert fast == outcome(read_midi, path)


def test_a_sparse_file_is_refused_from_its_size_in_little_memory(tmp_path: Path) -> None:
    path = midi_sparse(tmp_path)  # 2 GiB; before, the fast reader took 2.2 GB of RSS to read it
    for read in (read_midi_fast, read_midi):
        result = run_isolated(read, path, Limits(timeout_s=30, memory_mb=256))
        assert result.reason == "too_large", result
        assert "2,147,483,648 bytes, over the 67,108,864 byte limit" in result.detail
