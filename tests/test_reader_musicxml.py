"""The fast MusicXML reader: hand-made edge cases, hostile input, and real files against music21."""

from __future__ import annotations

import time
import zipfile
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.crosscheck import compare_items, compare_scores
from pipeline.errors import ScoreParseError, Unsupported
from pipeline.readers.music21_reader import read_music21
from pipeline.readers.musicxml import read_musicxml
from pipeline.score import Score
from pipeline.tokenizer import Tokenizer
from tests.helpers import m21_path
from tests.hostile import HOSTILE

F = Fraction
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
PARTS = '<part-list><score-part id="P1"><part-name>Lead</part-name></score-part></part-list>'


def note(step: str = "C", octave: int = 4, dur: int = 1, extra: str = "", pre: str = "") -> str:
    """A <note>; `pre` goes before <pitch> (chord, grace, cue), `extra` after <duration>."""
    alter = ""
    if len(step) == 2:
        alter = f"<alter>{1 if step[1] == '#' else -1}</alter>"
    return (
        f"<note>{pre}<pitch><step>{step[0]}</step>{alter}<octave>{octave}</octave></pitch>"
        f"<duration>{dur}</duration>{extra}</note>"
    )


def rest(dur: int, extra: str = "") -> str:
    return f"<note><rest/><duration>{dur}</duration>{extra}</note>"


def attributes(divisions: int = 1, beats: int = 4, beat_type: int = 4, more: str = "") -> str:
    time_sig = f"<time><beats>{beats}</beats><beat-type>{beat_type}</beat-type></time>"
    return f"<attributes><divisions>{divisions}</divisions>{more}{time_sig}</attributes>"


def document(measures: list[str], header: str = "", parts: str = PARTS, first: str = "") -> str:
    body = "".join(f'<measure number="{i + 1}">{m}</measure>' for i, m in enumerate(measures))
    head = first or attributes()
    body = body.replace('<measure number="1">', f'<measure number="1">{head}', 1)
    return f'{HEAD}<score-partwise version="3.1">{header}{parts}<part id="P1">{body}</part></score-partwise>'


def read(tmp_path: Path, xml: str, name: str = "t.musicxml") -> Score:
    path = tmp_path / name
    path.write_text(xml)
    (score,) = read_musicxml(path)
    assert isinstance(score, Score)
    return score


def keys(score: Score) -> list[tuple[Fraction, int, Fraction]]:
    return [(n.onset, n.pitch, n.duration) for n in score.notes]


# -- notes, chords, ties -------------------------------------------------------------------------
def test_chords_backup_forward_and_voices_place_notes(tmp_path: Path) -> None:
    measure = (
        note("C", 4, 2, "<voice>1</voice>")
        + note("E", 4, 2, "<voice>1</voice>", pre="<chord/>")
        + note("G", 4, 2, "<voice>1</voice>")
        + "<backup><duration>4</duration></backup>"
        + "<forward><duration>1</duration><voice>2</voice></forward>"
        + note("C", 3, 3, "<voice>2</voice>")
    )
    score = read(tmp_path, document([measure]))
    assert keys(score) == [(0, 60, 2), (0, 64, 2), (1, 48, 3), (2, 67, 2)]
    assert score.report["chords_split"] == 1
    assert [(b.length, str(b.meter), b.pickup) for b in score.bars] == [(4, "4/4", False)]


def test_ties_merge_across_bar_lines_and_count(tmp_path: Path) -> None:
    start, stop = '<tie type="start"/>', '<tie type="stop"/>'
    both = stop + start
    xml = document([rest(3) + note("D", 5, 1, start), note("D", 5, 4, both), note("D", 5, 1, stop)])
    score = read(tmp_path, xml)
    assert keys(score) == [(3, 74, 6)]
    assert score.report["ties_merged"] == 2


def test_a_chord_note_without_a_tie_is_struck_again(tmp_path: Path) -> None:
    """music21 lends the chord's first tie to every chord note (bwv-like D4+D5 chords in
    Beethoven op. 18/1 ii merge the untied D5); the source ties only D4, so D5 sounds twice."""
    first = note("D", 4, 2, '<tie type="start"/>') + note("D", 5, 2, pre="<chord/>")
    second = note("D", 4, 2, '<tie type="stop"/>') + note("D", 5, 2, pre="<chord/>")
    score = read(tmp_path, document([first + second]))
    assert keys(score) == [(0, 62, 4), (0, 74, 2), (2, 74, 2)]


def test_grace_unpitched_and_chord_symbols_are_dropped_and_counted_cue_notes_sound(
    tmp_path: Path,
) -> None:
    measure = (
        note("D", 5, 0, pre="<grace/>")
        + note("F", 5, 0, pre="<grace/><chord/>")
        + "<harmony><root><root-step>C</root-step></root><kind>major</kind></harmony>"
        + note("C", 4, 2)
        + "<note><unpitched><display-step>E</display-step><display-octave>4</display-octave>"
        "</unpitched><duration>1</duration></note>"
        + note("G", 4, 1, pre="<cue/>")  # music21 sounds cue notes; so do we
    )
    score = read(tmp_path, document([measure]))
    assert keys(score) == [(0, 60, 2), (3, 67, 1)]
    assert score.report["grace_dropped"] == 2
    assert score.report["unpitched_dropped"] == 1
    assert score.report["chord_symbols_ignored"] == 1


def test_a_chord_note_after_a_direction_keeps_the_chord_onset(tmp_path: Path) -> None:
    """music21 reads a <chord/> note after an intervening <direction> as a new chord one
    beat later (and the measure one beat longer); <chord/> means the previous note's onset."""
    words = "<direction><direction-type><words>dolce</words></direction-type></direction>"
    measure = note("C", 4, 2) + words + note("E", 4, 2, pre="<chord/>") + note("G", 4, 2)
    score = read(tmp_path, document([measure]))
    assert keys(score) == [(0, 60, 2), (0, 64, 2), (2, 67, 2)]
    assert score.bars[0].length == 4


def test_a_rest_followed_by_a_chord_note_is_not_a_c4(tmp_path: Path) -> None:
    """music21 builds a chord of the rest and the <chord/> note, the rest becoming a C4 (its
    default pitch); a rest has no pitch, so only the E4 sounds, at the rest's onset."""
    measure = rest(2) + note("E", 4, 2, pre="<chord/>") + note("G", 4, 2)
    score = read(tmp_path, document([measure]))
    assert keys(score) == [(0, 64, 2), (2, 67, 2)]


def test_the_alter_element_sets_the_pitch_not_the_accidental(tmp_path: Path) -> None:
    """music21 sounds a display <accidental> when <alter> is missing (trecento PMFC 13/4, m. 147,
    an editorial sharp on B4); MusicXML's pitch is step + alter, so B4 stays B4 (and is counted)."""
    sharp = note("B", 4, 4, "<accidental editorial='yes'>sharp</accidental>")
    score = read(tmp_path, document([sharp]))
    assert keys(score) == [(0, 71, 4)]
    assert score.report["accidental_without_alter"] == 1


def test_written_pitch_is_kept_under_transpose_as_music21_does(tmp_path: Path) -> None:
    transpose = "<transpose><diatonic>-1</diatonic><chromatic>-2</chromatic></transpose>"
    score = read(tmp_path, document([note("D", 5, 4)], first=attributes(more=transpose)))
    assert keys(score) == [(0, 74, 4)]


def test_divisions_change_mid_part(tmp_path: Path) -> None:
    xml = document([note("C", 4, 4), attributes(3) + note("D", 4, 1) + note("E", 4, 11)])
    score = read(tmp_path, xml)
    assert keys(score) == [(0, 60, 4), (4, 62, F(1, 3)), (F(13, 3), 64, F(11, 3))]


# -- bars, meters, tempos, keys ------------------------------------------------------------------
def test_pickup_time_signature_change_and_short_last_bar(tmp_path: Path) -> None:
    three_four = "<attributes><time><beats>3</beats><beat-type>4</beat-type></time></attributes>"
    xml = document(
        [note("G", 4, 1), note("C", 5, 4), three_four + note("E", 5, 3), note("C", 5, 2)]
    )
    score = read(tmp_path, xml)
    assert [(b.length, str(b.meter), b.pickup) for b in score.bars] == [
        (1, "4/4", True),
        (4, "4/4", False),
        (3, "3/4", False),
        (2, "3/4", False),
    ]


def test_an_empty_measure_lasts_its_bar_and_a_lone_whole_rest_fills_it(tmp_path: Path) -> None:
    whole = rest(4, "<type>whole</type>")
    xml = document([note("C", 4, 3), "", whole], first=attributes(1, 3, 4))
    score = read(tmp_path, xml)
    assert [b.length for b in score.bars] == [3, 3, 3]


def test_tempos_first_mark_per_onset_in_quarter_bpm(tmp_path: Path) -> None:
    dotted = (
        "<direction><direction-type><metronome><beat-unit>quarter</beat-unit><beat-unit-dot/>"
        "<per-minute>60</per-minute></metronome></direction-type><sound tempo='77'/></direction>"
    )
    later = "<sound tempo='100'/>"
    xml = document([dotted + later + note("C", 4, 2) + "<sound tempo='55'/>" + note("C", 4, 2)])
    score = read(tmp_path, xml)
    # music21's float rounding is kept: 55 BPM reads as 55.00000000000001
    assert [(t.onset, t.bpm) for t in score.tempos] == [(0, 90.0), (2, pytest.approx(55.0))]


@pytest.mark.parametrize(
    ("fifths", "mode", "expected"),
    [(-3, "major", "E- major"), (-3, "minor", "C minor"), (2, "dorian", "E dorian"),
     (1, "", "ks:+1"), (0, "none", "ks:+0"), (-7, "minor", "A- minor")],
)  # fmt: skip
def test_key_strings_match_music21(tmp_path: Path, fifths: int, mode: str, expected: str) -> None:
    mode_el = f"<mode>{mode}</mode>" if mode else ""
    key = f"<key><fifths>{fifths}</fifths>{mode_el}</key>"
    assert read(tmp_path, document([note()], first=attributes(more=key))).key == expected


def test_metadata_title_composer_and_part_names(tmp_path: Path) -> None:
    header = (
        "<work><work-title>Ale is Dear, The</work-title></work><movement-title>I</movement-title>"
        '<identification><creator type="composer"> Anon </creator>'
        '<creator type="lyricist">Someone</creator></identification>'
    )
    score = read(tmp_path, document([note()], header=header))
    assert (score.meta.title, score.meta.composer, score.meta.id) == (
        "The Ale is Dear",
        "Anon",
        "t.musicxml",
    )
    assert [p.name for p in score.parts] == ["Lead"]
    untitled = read(tmp_path, document([note()]), name="untitled.xml")
    assert untitled.meta.title == "untitled.xml"  # music21's movement name: the file name


def test_a_two_staff_part_becomes_two_parts(tmp_path: Path) -> None:
    staves = "<staves>2</staves>"
    measure = (
        note("E", 5, 4, "<staff>1</staff>")
        + "<backup><duration>4</duration></backup>"
        + note("C", 3, 4, "<staff>2</staff>")
    )
    score = read(tmp_path, document([measure], first=attributes(more=staves)))
    assert [(n.pitch, n.part) for n in score.notes] == [(48, 1), (76, 0)]
    assert [p.name for p in score.parts] == ["Lead", "Lead"]


def test_unsupported_constructs_raise_unsupported(tmp_path: Path) -> None:
    timewise = tmp_path / "tw.musicxml"
    timewise.write_text(HEAD + "<score-timewise><measure number='1'/></score-timewise>")
    with pytest.raises(Unsupported, match="score-timewise"):
        read_musicxml(timewise)
    plain = tmp_path / "p.musicxml"
    plain.write_text(document([note()]))
    with pytest.raises(Unsupported, match="expand_repeats"):
        read_musicxml(plain, expand_repeats=True)


# -- broken and hostile input --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "reason"),
    [("billion_laughs", "malformed_xml"), ("external_entity", "malformed_xml"),
     ("deep_nesting", "malformed_xml"),
     pytest.param("zip_bomb", "too_large", marks=pytest.mark.slow)],  # writing it takes ~20 s
)  # fmt: skip
def test_hostile_files_are_refused_quickly(tmp_path: Path, name: str, reason: str) -> None:
    path = HOSTILE[name](tmp_path)
    started = time.process_time()
    with pytest.raises(ScoreParseError) as caught:
        read_musicxml(path)
    assert caught.value.reason == reason
    assert time.process_time() - started < 2
    assert "TOP-SECRET" not in str(caught.value)


def test_an_oversized_zip_member_is_refused_before_and_while_decompressing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.readers import musicxml_archive

    monkeypatch.setattr(musicxml_archive, "MAX_DOCUMENT_BYTES", 1 << 20)
    path = tmp_path / "bomb.mxl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("score.xml", HEAD + "<score-partwise>" + " " * (2 << 20) + "</score-partwise>")
    with pytest.raises(ScoreParseError) as caught:
        read_musicxml(path)
    assert caught.value.reason == "too_large"
    # a header that understates the size: zipfile stops at the declared size and the CRC fails
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("score.xml")
        info.file_size = 100
        with pytest.raises((ScoreParseError, zipfile.BadZipFile)):
            musicxml_archive._read_member(z, info, 1 << 20, path)


def test_a_zip_slip_member_is_read_in_memory_only(tmp_path: Path) -> None:
    inside = tmp_path / "in"
    inside.mkdir()
    path = HOSTILE["zip_slip"](inside)
    before = sorted(tmp_path.rglob("*"))
    (score,) = read_musicxml(path)
    assert isinstance(score, Score) and [p.name for p in score.parts] == ["evil"]
    assert sorted(tmp_path.rglob("*")) == before


def test_the_container_rootfile_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "two.mxl"
    container = '<container><rootfiles><rootfile full-path="b.xml"/></rootfiles></container>'
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("META-INF/container.xml", container)
        z.writestr("a.xml", document([note("C", 4, 4)]))
        z.writestr("b.xml", document([note("D", 4, 4)]))
    (score,) = read_musicxml(path)
    assert isinstance(score, Score) and [n.pitch for n in score.notes] == [62]


@pytest.mark.parametrize(
    ("content", "suffix", "reason"),
    [(b"PK\x03\x04 not really a zip", ".mxl", "bad_zip"),
     (b"<score-partwise><part", ".musicxml", "malformed_xml"),
     (b"<opus/>", ".xml", "parse_error")],
)  # fmt: skip
def test_broken_files_get_a_reason(
    tmp_path: Path, content: bytes, suffix: str, reason: str
) -> None:
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(content)
    with pytest.raises(ScoreParseError) as caught:
        read_musicxml(path)
    assert caught.value.reason == reason


def test_an_absurdly_long_measure_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.musicxml"
    path.write_text(document([note("C", 4, 10**9)]))
    with pytest.raises(ScoreParseError) as caught:
        read_musicxml(path)
    assert caught.value.reason == "too_large"


def test_a_zip_without_a_score_is_not_musicxml(tmp_path: Path) -> None:
    path = tmp_path / "empty.mxl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "nothing")
    with pytest.raises(ScoreParseError) as caught:
        read_musicxml(path)
    assert caught.value.reason == "not_musicxml_zip"


# -- invariants and the reference ----------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@example(divisions=1, events=[("rest", 4, 0)])  # found by hypothesis: a lone whole rest in 1/4
@given(
    divisions=st.sampled_from([1, 2, 3, 4, 12, 480]),
    events=st.lists(
        st.tuples(st.sampled_from(["note", "rest", "chord"]), st.integers(1, 8), st.integers(0, 6)),
        min_size=1,
        max_size=24,
    ),
)
def test_a_single_voice_reads_as_its_running_sum(
    tmp_path_factory: pytest.TempPathFactory, divisions: int, events: list[tuple[str, int, int]]
) -> None:
    body, expected, position = "", [], Fraction(0)
    last_onset: Fraction | None = None
    last_duration = Fraction(0)
    for kind, units, step in events:
        letter = "CDEFGAB"[step]
        if kind == "chord" and last_onset is not None:
            body += note(letter, 5, units, pre="<chord/>")
            expected.append((last_onset, 72 + [0, 2, 4, 5, 7, 9, 11][step], last_duration))
            continue
        duration = Fraction(units, divisions)
        if kind == "rest":
            body += rest(units)
            last_onset = None
        else:
            body += note(letter, 4, units)
            expected.append((position, 60 + [0, 2, 4, 5, 7, 9, 11][step], duration))
            last_onset, last_duration = position, duration
        position += duration
    xml = document([body], first=attributes(divisions, 1, 4))
    score = read(tmp_path_factory.mktemp("h"), xml)
    assert keys(score) == sorted(expected)
    assert score.bars[0].start == 0
    # music21, the reference, shrinks a measure's lone whole or breve rest to the bar (here 1/4)
    lone_bar_rest = [k for k, _, _ in events] == ["rest"] and position in (4, 8)
    assert lone_bar_rest or sum(b.length for b in score.bars) >= position


REAL_FILES = [
    "bach/bwv66.6.mxl",
    "ciconia/quod_jactatur.xml",
    "schumann_robert/dichterliebe_no2.xml",
]


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_files_read_as_music21_reads_them(name: str) -> None:
    path = m21_path(name)
    fast, reference = read_musicxml(path), read_music21(path)
    assert [c.verdict for c in compare_items(fast, reference, Tokenizer())] == ["identical"]
    (a,), (b,) = fast, reference
    assert isinstance(a, Score) and isinstance(b, Score)
    assert (a.notes, a.bars, a.key, a.meta) == (b.notes, b.bars, b.key, b.meta)
    assert [p.name for p in a.parts] == [p.name for p in b.parts]
    assert [(t.onset, t.bpm) for t in a.tempos] == [(t.onset, t.bpm) for t in b.tempos]


# -- quirks: music21's misreadings, reproduced on request -----------------------------------------
_TIED = note("D", 4, 2, '<tie type="start"/>') + note("D", 5, 2, pre="<chord/>")
_WORDS = "<direction><direction-type><words>dolce</words></direction-type></direction>"
QUIRK_CASES = {
    # the source ties only D4: D5 is struck again; music21 lends D4's tie to D5 and merges it
    "chord-tie-lent": (
        _TIED + note("D", 4, 2, '<tie type="stop"/>') + note("D", 5, 2, pre="<chord/>"),
        [(0, 62, 4), (0, 74, 2), (2, 74, 2)],
    ),
    # <alter> is the pitch, a display <accidental> is not: B4; music21 sounds B#4
    "accidental-sounded": (
        note("B", 4, 4, "<accidental editorial='yes'>sharp</accidental>"),
        [(0, 71, 4)],
    ),
    # <chord/> means the previous note's onset; music21 starts a chord after the direction
    "detached-chord-note": (
        note("C", 4, 2) + _WORDS + note("E", 4, 2, pre="<chord/>") + note("G", 4, 2),
        [(0, 60, 2), (0, 64, 2), (2, 67, 2)],
    ),
    # a rest has no pitch; music21 makes a chord of it and the <chord/> note, the rest a C4
    "rest-in-chord-c4": (
        rest(2) + note("E", 4, 2, pre="<chord/>") + note("G", 4, 2),
        [(0, 64, 2), (2, 67, 2)],
    ),
}


@pytest.mark.parametrize("name", sorted(QUIRK_CASES))
def test_quirks_reproduce_a_music21_misreading_and_name_it(tmp_path: Path, name: str) -> None:
    measure, written = QUIRK_CASES[name]
    path = tmp_path / "q.musicxml"
    path.write_text(document([measure]))
    (right,), (quirked,), (reference,) = (
        read_musicxml(path),
        read_musicxml(path, quirks=True),
        read_music21(path),
    )
    assert isinstance(right, Score) and isinstance(quirked, Score) and isinstance(reference, Score)
    assert keys(right) == written
    assert not any(k.startswith("m21_quirk:") for k in right.report)
    tokenizer = Tokenizer()
    assert compare_scores(right, reference, tokenizer).verdict == "different"
    assert compare_scores(quirked, reference, tokenizer).verdict == "identical"
    assert keys(quirked) == keys(reference)
    assert [k for k in quirked.report if k.startswith("m21_quirk:")] == [f"m21_quirk:{name}"]


def test_quirks_change_nothing_where_music21_reads_right() -> None:
    path = m21_path("bach/bwv66.6.mxl")
    (right,), (quirked,) = read_musicxml(path), read_musicxml(path, quirks=True)
    assert quirked == right
    assert not any(k.startswith("m21_quirk:") for k in quirked.report)


def test_a_lent_tie_that_merges_nothing_is_not_counted(tmp_path: Path) -> None:
    """D4's tie is lent to D5, but no D5 follows: the reading is the same, so no quirk is named."""
    measure = _TIED + note("D", 4, 2, '<tie type="stop"/>') + note("E", 5, 2, pre="<chord/>")
    score = read(tmp_path, document([measure]))
    path = tmp_path / "t.musicxml"
    (quirked,) = read_musicxml(path, quirks=True)
    assert quirked == score
    assert not any(k.startswith("m21_quirk:") for k in quirked.report)


def test_a_quirk_that_fires_without_changing_the_reading_is_not_counted(tmp_path: Path) -> None:
    """After a <backup> to the chord's onset, music21's new chord sounds where the source's does."""
    voice = "<voice>1</voice>"
    measure = (
        note("C", 4, 2, voice)
        + note("G", 4, 2, voice)
        + "<backup><duration>2</duration></backup>"
        + note("E", 4, 2, voice, pre="<chord/>")
    )
    score = read(tmp_path, document([measure]))
    (quirked,) = read_musicxml(tmp_path / "t.musicxml", quirks=True)
    assert isinstance(quirked, Score)
    assert keys(quirked) == keys(score) == [(0, 60, 2), (2, 64, 2), (2, 67, 2)]
    assert not any(k.startswith("m21_quirk:") for k in quirked.report)


def test_quirks_combine_as_music21_reads_a_chord_rest_after_a_direction(tmp_path: Path) -> None:
    """music21 starts a chord at the <chord/> rest after the direction, and sounds the rest C4."""
    chord_rest = rest(2).replace("<note>", "<note><chord/>")
    path = tmp_path / "q.musicxml"
    path.write_text(document([note("C", 4, 2) + _WORDS + chord_rest + note("G", 4, 2)]))
    (quirked,), (reference,) = read_musicxml(path, quirks=True), read_music21(path)
    assert isinstance(quirked, Score) and isinstance(reference, Score)
    assert compare_scores(quirked, reference, Tokenizer()).verdict == "identical"
    assert keys(quirked) == [(0, 60, 2), (2, 60, 2), (4, 67, 2)]
    assert {k for k in quirked.report if k.startswith("m21_quirk:")} == {
        "m21_quirk:detached-chord-note",
        "m21_quirk:rest-in-chord-c4",
    }
