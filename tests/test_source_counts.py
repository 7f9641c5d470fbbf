"""Source counts: hand-made files for each counting rule, real files counted by hand, hostile input."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest

from pipeline.errors import ScoreParseError
from pipeline.readers import source_counts
from pipeline.readers.source_counts import SourceCount, count_source
from tests.helpers import m21_path, shared_data_root
from tests.hostile import HOSTILE, mutate


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- Humdrum **kern --------------------------------------------------------------------------

KERN_HEAD = "!!!OTL: test\n**kern\t**kern\t**dynam\n*M3/4\t*M3/4\t*\n"


def kern(tmp_path: Path, body: str, head: str = KERN_HEAD) -> SourceCount:
    counts = count_source(write(tmp_path, "t.krn", head + body))
    assert list(counts) == [None]
    return counts[None]


def test_kern_pickup_is_a_measure_and_a_final_double_bar_closes_the_last(tmp_path: Path) -> None:
    body = "4c\t4e\tp\n=1\t=1\t=1\n2.d\t2.f\t.\n=2\t=2\t=2\n2.e\t2.g\t.\n==\t==\t==\n*-\t*-\t*-\n"
    assert kern(tmp_path, body) == SourceCount(3, 6)


def test_kern_invisible_first_barline_and_empty_measures_are_not_measures(tmp_path: Path) -> None:
    body = "=1-\t=1-\t=1-\n2.c\t2.e\t.\n=2\t=2\t=2\n=3\t=3\t=3\n2.d\t2.f\t.\n"  # no final bar
    assert kern(tmp_path, body) == SourceCount(2, 4)


def test_kern_rests_grace_notes_and_tie_continuations_are_not_notes(tmp_path: Path) -> None:
    body = (
        "=1\t=1\t=1\n8qd\t4r\t.\n[4c\t4e\t.\n4c_\t4r\t.\n4c]\t4e\t.\n"  # grace d; c tied thrice
        "=2\t=2\t=2\n2.rr\t4Q\t.\n.\t2g\t.\n==\t==\t==\n"
    )
    # notes: c (once), e, e, g; the measure of rests still holds music
    assert kern(tmp_path, body) == SourceCount(2, 4)


def test_kern_chords_count_each_head_and_split_spines_are_followed(tmp_path: Path) -> None:
    body = (
        "=1\t=1\t=1\n*\t*^\t*\n2.C 2.E 2.G\t2c\t4e\t.\n.\t.\t2f\t.\n.\t4d\t.\t.\n"
        "*\t*v\t*v\t*\n=2\t=2\t=2\n2.c\t2.cc\tf\n==\t==\t==\n*-\t*-\t*-\n"
    )
    # C E G, c, e, f, d, then c and cc: the dynamics spine's `f` is not a note
    assert kern(tmp_path, body) == SourceCount(2, 9)


def test_kern_only_kern_spines_are_counted(tmp_path: Path) -> None:
    head = "**kern\t**text\t**dynam\n"
    body = "4c\tface\tff\n=1\t=1\t=1\n4d\tbed\t.\n==\t==\t==\n"
    assert kern(tmp_path, body, head) == SourceCount(2, 2)


def test_kern_triple_join_keeps_the_spines_in_step(tmp_path: Path) -> None:
    # music21 mis-reads this join (Beethoven op. 14/1 in sapp-beethoven-sonatas, bar 13).
    head = "**kern\t**kern\t**dynam\n"
    body = (
        "=12\t=12\t=12\n*^\t*^\t*\n*\t*\t*\t*^\t*\n4c\t4d\t4e\t4f\t4g\t.\n"
        "*v\t*v\t*\t*\t*\t*\n*\t*v\t*v\t*v\t*\n=13\t=13\t=13\n4c\t4e\tp\n==\t==\t==\n"
    )
    assert kern(tmp_path, body, head) == SourceCount(2, 7)


def test_kern_multi_piece_file_is_keyed_by_position(tmp_path: Path) -> None:
    piece = "**kern\n*M2/4\n=1\n4c\n4d\n==\n*-\n"
    counts = count_source(write(tmp_path, "opus.krn", piece + piece.replace("4d", "4d 4f")))
    assert counts == {"1": SourceCount(1, 2), "2": SourceCount(1, 3)}


def test_kern_latin1_and_old_mac_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "l.krn"
    path.write_bytes(b"!!!COM: D\xe9j\x85\r**kern\r4c\r=1\r4d\r==\r*-\r")
    assert count_source(path) == {None: SourceCount(2, 2)}


# --- MusicXML / MXL --------------------------------------------------------------------------


def mx_note(step: str, octave: int, extra: str = "", tie: str = "") -> str:
    ties = "".join(f'<tie type="{t}"/>' for t in tie.split()) if tie else ""
    return (
        f"<note>{extra}<pitch><step>{step}</step><octave>{octave}</octave></pitch>"
        f"<duration>1</duration>{ties}<type>quarter</type></note>"
    )


REST = "<note><rest/><duration>1</duration></note>"
DRUM = "<note><unpitched><display-step>E</display-step><display-octave>4</display-octave></unpitched><duration>1</duration></note>"


def partwise(parts: list[list[str]]) -> str:
    body = "".join(
        f'<part id="P{i}">'
        + "".join(f'<measure number="{k + 1}">{m}</measure>' for k, m in enumerate(measures))
        + "</part>"
        for i, measures in enumerate(parts)
    )
    names = "".join(
        f'<score-part id="P{i}"><part-name>p</part-name></score-part>' for i in range(len(parts))
    )
    return f'<?xml version="1.0"?><score-partwise><part-list>{names}</part-list>{body}</score-partwise>'


def test_musicxml_measures_of_the_first_part_and_notes_of_all(tmp_path: Path) -> None:
    first = [mx_note("C", 4) + REST, mx_note("D", 4) + mx_note("F", 4, "<chord/>")]
    second = [mx_note("E", 3), mx_note("G", 3, "<grace/>") + mx_note("G", 3) + DRUM, REST]
    counts = count_source(write(tmp_path, "a.musicxml", partwise([first, second])))
    assert counts == {None: SourceCount(2, 5)}


def test_musicxml_tie_continuations_are_merged_and_a_dangling_stop_is_a_note(
    tmp_path: Path,
) -> None:
    measures = [
        mx_note("C", 4, tie="start") + mx_note("C", 4, tie="stop start"),
        mx_note("C", 4, tie="stop") + mx_note("D", 4, tie="stop"),  # D: stop with nothing open
    ]
    counts = count_source(write(tmp_path, "t.xml", partwise([measures])))
    assert counts == {None: SourceCount(2, 2)}


def test_musicxml_ties_are_per_part(tmp_path: Path) -> None:
    first = [mx_note("C", 4, tie="start")]
    second = [mx_note("C", 4, tie="stop")]  # another part: not a continuation of the first
    assert count_source(write(tmp_path, "p.xml", partwise([first, second])))[None].notes == 2


def test_musicxml_comments_are_not_music(tmp_path: Path) -> None:
    text = partwise([[mx_note("C", 4) + "<!-- " + mx_note("D", 4) + "<measure> -->"]])
    assert count_source(write(tmp_path, "c.xml", text)) == {None: SourceCount(1, 1)}


def test_musicxml_timewise_and_utf16(tmp_path: Path) -> None:
    text = (
        '<?xml version="1.0" encoding="UTF-16"?><score-timewise>'
        + "".join(
            f'<measure number="{k}"><part id="P1">{mx_note("C", 4)}</part>'
            f'<part id="P2">{mx_note("E", 4)}</part></measure>'
            for k in (1, 2, 3)
        )
        + "</score-timewise>"
    )
    path = tmp_path / "tw.xml"
    path.write_bytes(text.encode("utf-16"))
    assert count_source(path) == {None: SourceCount(3, 6)}


def test_mxl_reads_the_rootfile_named_by_the_container(tmp_path: Path) -> None:
    path = tmp_path / "s.mxl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "META-INF/container.xml",
            '<container><rootfiles><rootfile full-path="music/real.xml"/></rootfiles></container>',
        )
        archive.writestr("decoy.xml", partwise([[mx_note("C", 4)]]))
        archive.writestr("music/real.xml", partwise([[mx_note("C", 4), mx_note("D", 4)] * 2]))
    assert count_source(path) == {None: SourceCount(4, 4)}


def test_broken_or_foreign_files_are_not_counted(tmp_path: Path) -> None:
    assert count_source(write(tmp_path, "bad.mxl", "not a zip")) == {}
    assert count_source(write(tmp_path, "x.xml", "<html><body/></html>")) == {}
    assert count_source(write(tmp_path, "a.mid", "MThd")) == {}
    assert count_source(write(tmp_path, "a.txt", "X:1\nK:C\nCDEF|\n")) == {}
    with pytest.raises(ScoreParseError):
        count_source(tmp_path / "missing.krn")


# --- MIDI ------------------------------------------------------------------------------------


def test_midi_counts_pitched_note_ons_of_the_tracks_mido_reads(tmp_path: Path) -> None:
    def track(events: bytes) -> bytes:
        return b"MTrk" + len(events).to_bytes(4, "big") + events

    events = (
        b"\x00\xff\x03\x02ab"  # a track name (meta)
        b"\x00\x90\x3c\x40"  # note-on C4
        b"\x00\x3e\x40"  # running status: note-on D4
        b"\x00\xf0\x02\x7e\xf7"  # system exclusive
        b"\x10\x3c\x00"  # running status, velocity 0: a note-off
        b"\x81\x00\x80\x3e\x00"  # note-off (two-byte delta time)
        b"\x00\x99\x24\x40"  # drum channel: unpitched
        b"\x00\xc0\x05\x00\x91\x40\x40"  # program change (one data byte), note-on on channel 2
        b"\x00\xff\x2f\x00"
    )
    header = b"MThd" + (6).to_bytes(4, "big") + b"\x00\x01\x00\x02\x01\xe0"
    ignored = track(b"\x00\x90\x30\x40\x00\xff\x2f\x00")  # past the two declared tracks
    path = tmp_path / "t.mid"
    path.write_bytes(header + track(events) + track(events) + ignored)
    assert count_source(path) == {None: SourceCount(0, 6)}


def test_midi_counts_match_the_readers_on_pop909() -> None:
    from pipeline.readers import read_items

    root = shared_data_root()
    files = sorted(root.glob("pop909/*/*.mid"))[:40]
    if not files:
        pytest.skip("POP909 not found under the shared data root")
    for path in files:
        (score,) = read_items(str(path))
        written = count_source(path)[None].notes
        assert written == len(score.notes) + score.report.get("zero_duration_dropped", 0), path


# --- ABC -------------------------------------------------------------------------------------


def abc(tmp_path: Path, text: str) -> dict[str | None, SourceCount]:
    return count_source(write(tmp_path, "t.abc", text))


def test_abc_single_tune_is_keyed_by_its_number_as_music21_reads_it(tmp_path: Path) -> None:
    assert list(abc(tmp_path, "X:07\nT:t\nK:C\nCDEF|\n")) == ["7"]


def test_abc_book_is_keyed_by_the_x_text_and_repeated_numbers_are_dropped(tmp_path: Path) -> None:
    book = "%%header\n\nX:01\nK:C\nC4|\n\nX:2\nK:C\nD4|\n\nX:2\nK:C\nE4|\n"
    assert abc(tmp_path, book) == {"01": SourceCount(1, 1)}


def test_abc_bars_pickup_repeats_endings_and_line_ends(tmp_path: Path) -> None:
    tune = (
        "X:1\nM:4/4\nL:1/4\nK:G\n"
        "G|:ABcd|efga|\n"  # pickup; a bar at a line end ...
        "|[1 bagf:|[2 g4|]\n"  # ... and one at the next line start: one boundary
        "|: z4 :: A4 :|2 B4 ||\n"
    )
    # pickup, ABcd, efga, bagf, g4, z4, A4, B4
    assert abc(tmp_path, tune) == {"1": SourceCount(8, 16)}


def test_abc_text_decorations_grace_fields_and_lyrics_are_not_notes(tmp_path: Path) -> None:
    tune = (
        "X:2\nT:A Tune\nM:3/4\nK:D\n"
        '"Am7"A2 !trill!B +fermata+c | {gag}d [K:Bb] e f % comment CDEF\n'
        "w: a-ba-cus bed\n"
        "%%MIDI program 1\n"
        '"^Fine" g3 |]\n'
    )
    # A B c | d e f g |]: the line ends without a bar line, so f and g share a measure
    assert abc(tmp_path, tune) == {"2": SourceCount(2, 7)}


def test_abc_ties_chords_and_accidentals(tmp_path: Path) -> None:
    tune = "X:3\nL:1/4\nK:C\n^c2-c d-|d [CEG]-[CEG] [C-E]|[CF]2 c'-c'' A,,4-A,|\n"
    # ^c, d, C E G (the second [CEG] continues the first), C E, F (its C continues [C-E]'s),
    # c', c'' and A,, A, (a tie to another octave is two notes)
    assert abc(tmp_path, tune) == {"3": SourceCount(3, 12)}


def test_abc_voices_take_the_longest_voice_and_all_notes(tmp_path: Path) -> None:
    tune = (
        "X:4\nL:1/4\nV:1 clef=treble\nV:2 clef=bass\nK:C\n"
        "V:1\nCDEF|GABc|\nV:2\nC,4|\n[V:1] cdef|\n[V:2] G,4|\n"
    )
    assert abc(tmp_path, tune) == {"4": SourceCount(3, 14)}


def test_abc_tune_without_bar_lines_is_one_run(tmp_path: Path) -> None:
    # music21 lays bars out from the meter (Josquin's La plus des plus): more bars than written.
    assert abc(tmp_path, "X:1\nM:4/4\nK:C\nC4 D4 E4 F4\n") == {"1": SourceCount(1, 4)}


# --- real files, counted by hand -------------------------------------------------------------


def test_bach_chorale_mxl() -> None:
    # 40 <measure> over 4 parts; 165 <pitch>, 2 tie stops continuing 2 tie starts, no grace.
    assert count_source(m21_path("bach/bwv66.6.mxl")) == {None: SourceCount(10, 163)}


def test_palestrina_kern() -> None:
    # =1 .. =36 then ==, no pickup; 462 pitched tokens of which 33 are tie ends `]`.
    assert count_source(m21_path("palestrina/Agnus_01.krn")) == {None: SourceCount(36, 429)}


def test_music21_reads_beethoven_op14_no1_short() -> None:
    # 162 written measures (=1- .. =162, ==); music21 stops laying measures at bar 13 (a
    # three-spine *v join) and pads the rest: its reading has 61 bars, 49 of them appended.
    path = shared_data_root() / "sapp-beethoven-sonatas" / "sonata09-1.krn"
    if not path.is_file():
        pytest.skip("shared data not present")
    assert count_source(path)[None].measures == 162


def test_nottingham_note_before_a_line_end_double_repeat() -> None:
    # `"G"G3 G2B::` ends bar 8: music21 drops the B (its reading has 80 notes, 81 are written).
    path = shared_data_root() / "nottingham" / "jigs.abc"
    if not path.is_file():
        pytest.skip("shared data not present")
    assert count_source(path)["95"] == SourceCount(16, 81)


def test_abc_annotation_before_a_note_keeps_the_note(tmp_path: Path) -> None:
    # O'Neill's 578 (m21-folk): music21 drops the note after each `">"` annotation, reading 53
    # of its 65 notes; this excerpt holds 12 notes in 5 measures, music21 reads 9.
    tune = 'X:578\nM:2/4\nL:1/8\nK:D\nde|">"f2 d2|">"f2 e2|">"d3 c/B/|A2 FE|\n'
    assert abc(tmp_path, tune) == {"578": SourceCount(5, 12)}


def test_oneills_578_is_counted_whole() -> None:
    assert count_source(m21_path("oneills1850/0550-0625.abc"))["578"] == SourceCount(26, 65)


# --- hostile and corrupted input -------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    # Building the 2 GiB zip bomb alone takes ~15 s: the small bombs below cover it in the fast run.
    [pytest.param(n, marks=pytest.mark.slow) if n == "zip_bomb" else n for n in sorted(HOSTILE)],
)
def test_hostile_input_is_bounded(name: str, tmp_path: Path) -> None:
    path = HOSTILE[name](tmp_path)
    started = time.process_time()
    try:
        counts = count_source(path)
    except ScoreParseError:
        counts = {}
    assert time.process_time() - started < 10
    if name == "zip_bomb":
        assert counts == {}
    if name == "abc_megabyte_line":
        assert counts == {"1": SourceCount(1, 800_000)}


PATHOLOGICAL = {
    "long_kern_token.krn": "**kern\n4" + "a" * 300_000 + "r\n" + "4c\t" * 50_000 + "\n",
    "unclosed_tags.musicxml": '<score-partwise><part id="P1"><measure>'
    + "<tie <grace <note <pitch <!-- " * 40_000,
    "ties_without_notes.xml": "<score-partwise>" + '<tie type="stop"/>' * 100_000,
    "colons_and_quotes.abc": "X:1\nK:C\n" + ":" * 300_000 + "|" + '"[{!' * 50_000 + "\n",
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_text_costs_its_length(name: str, tmp_path: Path) -> None:
    path = write(tmp_path, name, PATHOLOGICAL[name])
    started = time.process_time()  # CPU time: a loaded machine must not fail it
    count_source(path)
    assert time.process_time() - started < 3


@pytest.mark.parametrize("declared", [True, False])
def test_an_oversized_mxl_member_is_not_counted(
    declared: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source_counts, "MAX_BYTES", 1 << 16)
    path = tmp_path / "bomb.mxl"
    document = partwise([[mx_note("C", 4)] * 2000])  # ~150 KB of real music
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("score.xml", document)
    if not declared:
        # A lying header claims a small member: zipfile stops there and fails the CRC check.
        data = bytearray(path.read_bytes())
        size = len(document).to_bytes(4, "little")
        for at in range(len(data) - 3):
            if data[at : at + 4] == size:
                data[at : at + 4] = (100).to_bytes(4, "little")
        path.write_bytes(bytes(data))
    assert count_source(path) == {}


@pytest.mark.parametrize(
    "seed_file", ["bach/bwv66.6.mxl", "bach/bwv277.krn", "essenFolksong/teste.abc"]
)
def test_corrupted_files_never_raise_anything_else(seed_file: str, tmp_path: Path) -> None:
    source = m21_path(seed_file)
    data = source.read_bytes()
    for seed in range(40):
        path = tmp_path / f"m{seed}{source.suffix}"
        path.write_bytes(mutate(data, seed))
        try:
            counts = count_source(path)
        except ScoreParseError:
            continue
        assert all(c.measures >= 0 and c.notes >= 0 for c in counts.values())


def test_abc_text_mutations_never_raise(tmp_path: Path) -> None:
    text = m21_path("essenFolksong/teste.abc").read_text(encoding="utf-8", errors="replace")
    import random

    rng = random.Random(0)
    alphabet = "|:[]{}\"!+-%\nXVK:1 ^_=,'ABCabcz"
    for k in range(60):
        chars = list(text[: rng.randrange(200, 3000)])
        for _ in range(30):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        count_source(write(tmp_path, f"m{k}.abc", "".join(chars)))
