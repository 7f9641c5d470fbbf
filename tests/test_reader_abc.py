"""The fast ABC reader: hand-made edge cases, music21 parity on excerpts and real files, fuzzing."""

from __future__ import annotations

import random
import time
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.crosscheck import QUIRK_PREFIX, compare_items, compare_scores
from pipeline.errors import ScoreParseError, Unsupported
from pipeline.readers.abc import MAX_TUNE_CHARS, read_abc
from pipeline.readers.abc_meter import best_time_signature
from pipeline.readers.common import ItemFailure
from pipeline.readers.music21_reader import read_music21
from pipeline.score import Meter, Score
from pipeline.tokenizer import Tokenizer
from tests.helpers import m21_path
from tests.hostile import abc_megabyte_line, mutate

Q = Fraction


def write(tmp_path: Path, text: str, name: str = "tune.abc") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def one(tmp_path: Path, body: str, header: str = "X:1\nT:t\nM:4/4\nL:1/8\nK:C\n") -> Score:
    items = read_abc(write(tmp_path, header + body + "\n"))
    assert len(items) == 1 and isinstance(items[0], Score), items
    return items[0]


def keys(score: Score) -> list[tuple[Fraction, int, Fraction]]:
    return score.note_keys()


# -- header fields --------------------------------------------------------------------------------
def test_header_fields_become_meta_tempo_and_key(tmp_path: Path) -> None:
    score = one(
        tmp_path, "ABcd|", "X:07\nT:First\nT:Second\nC:Anon\nM:C|\nL:1/4\nQ:3/8=120\nK:Ador\n"
    )
    assert score.meta.id == "tune.abc#X:7" and score.meta.collection_item == "7"
    assert (score.meta.title, score.meta.composer) == ("First", "Anon")
    assert score.tempos[0].bpm == 180.0  # three eighths at 120 = quarter at 180
    assert score.key == "A dorian"
    assert score.bars[0].meter == Meter(2, 2)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("K:G", "G major"), ("K:Bb", "B- major"), ("K:F#m", "F# minor"), ("K:Ddor", "D dorian"),
        ("K:EMix", "E mixolydian"), ("K:C major", "C major"), ("K:Aaeolian", "A aeolian"),
        ("K:D exp ^f", "ks:+2"), ("K:HP", "ks:+0"), ("K:Bloc", "ks:+5"), ("K:treble", "C major"),
    ],
)  # fmt: skip
def test_key_strings_follow_the_reference(tmp_path: Path, field: str, expected: str) -> None:
    assert one(tmp_path, "cdef|gabc'|", f"X:1\nM:4/4\nL:1/8\n{field}\n").key == expected


def test_default_length_comes_from_the_meter_when_L_is_absent(tmp_path: Path) -> None:
    short = one(tmp_path, "AB|", "X:1\nM:2/4\nK:C\n")  # 2/4 < 3/4: sixteenths
    long = one(tmp_path, "AB|", "X:1\nM:6/8\nK:C\n")
    assert short.notes[0].duration == Q(1, 4) and long.notes[0].duration == Q(1, 2)


@pytest.mark.parametrize(
    ("field", "bpm"), [("Q:1/4=96", 96.0), ("Q:120", 120.0), ('Q:"Allegro"', 132.0), ('Q:"Slowly" 1/2=40', 80.0)]
)  # fmt: skip
def test_tempo_forms(tmp_path: Path, field: str, bpm: float) -> None:
    assert one(tmp_path, "cdef|gabc|", f"X:1\nM:4/4\nL:1/8\n{field}\nK:C\n").tempo == bpm


# -- notes ----------------------------------------------------------------------------------------
def test_lengths_broken_rhythm_tuplets_ties_and_chords(tmp_path: Path) -> None:
    score = one(tmp_path, "A>B c<d (3efg a2-a2 | [CEG]2 z2 A/ B// c3/2 d3/ z|")
    durations = [n.duration for n in score.notes]
    assert durations[:4] == [Q(3, 4), Q(1, 4), Q(1, 4), Q(3, 4)]
    assert durations[4:7] == [Q(1, 3)] * 3
    assert durations[7] == Q(2)  # a2-a2 is one tied note
    assert [n.pitch for n in score.notes if n.onset == 5] == [60, 64, 67]
    assert durations[-4:] == [Q(1, 4), Q(1, 8), Q(3, 4), Q(3, 4)]
    assert score.report["ties_merged"] == 1 and score.report["chords_split"] == 1


def test_octaves_accidentals_and_key_signature(tmp_path: Path) -> None:
    score = one(tmp_path, "C, c c' ^F =f _B f|", "X:1\nM:4/4\nL:1/8\nK:G\n")
    assert [n.pitch for n in score.notes] == [48, 72, 84, 66, 77, 70, 77]  # =f holds: f natural


def test_accidentals_last_to_the_end_of_the_bar(tmp_path: Path) -> None:
    # ABC: an accidental holds for the rest of the bar, for that letter in every octave (the
    # `pitch` default music21 also uses, but only when `%abc-2.x` opens the text; no tune of
    # the folk corpora declares it, so music21 reads e.g. nottingham/ashover.abc X:7
    # `"D"D/2^F/2A/2D/2 F/2A/2D/2F/2` as a D chord with F naturals).
    plain = one(tmp_path, "^c c c' d|c4 =F ^F F|")
    assert [n.pitch for n in plain.notes] == [73, 73, 85, 74, 72, 65, 66, 66]
    declared = read_abc(
        write(tmp_path, "%abc-2.1\nX:1\nM:4/4\nL:1/8\nK:C\n^c c c' d|c4|\n", "new.abc")
    )
    assert isinstance(declared[0], Score)
    assert [n.pitch for n in declared[0].notes] == [73, 73, 85, 74, 72]
    off = one(tmp_path, "^c c d2|", "X:1\nM:4/4\nL:1/8\n%%propagate-accidentals not\nK:C\n")
    assert [n.pitch for n in off.notes] == [73, 72, 74]


def test_chords_share_the_bar_accidentals_and_ties(tmp_path: Path) -> None:
    # music21 reads a chord's notes apart from the bar (no carried accidental in or out) and
    # ignores a tie after a chord; in the source `^c [ce]` is a C# chord and `[CE]2-[CE]2` holds.
    score = one(tmp_path, "^c [ce] [^GB] G2|[CE]2-[CE]2 z4|")
    assert [n.pitch for n in score.notes][:5] == [73, 73, 76, 68, 71]
    assert [n.pitch for n in score.notes][5] == 68  # ^G from the chord holds for the bar
    assert (Q(5, 2), 60, Q(2)) in keys(score) and (Q(5, 2), 64, Q(2)) in keys(score)


def test_quirks_mode_reproduces_the_reference(tmp_path: Path) -> None:
    path = write(tmp_path, 'X:1\nM:6/8\nL:1/8\nK:G\n^c c Hg3|x2 c ">"d e2|\n')
    fast, ref = read_abc(path, quirks=True)[0], read_music21(path)[0]
    assert isinstance(fast, Score) and isinstance(ref, Score)
    assert (fast.notes, fast.bars) == (ref.notes, ref.bars)
    assert {k for k in fast.report if k.startswith(QUIRK_PREFIX)} == {
        "m21_quirk:accidental-not-carried",
        "m21_quirk:fermata-note-dropped",
        "m21_quirk:invisible-rest-dropped",
        "m21_quirk:annotation-note-dropped",
    }


def test_grace_notes_decorations_and_chord_symbols_are_dropped_and_counted(tmp_path: Path) -> None:
    score = one(tmp_path, '{ga}A !trill!B ~c .d "Am"e "^text"f +slide+g TA|')
    assert [n.pitch for n in score.notes][:3] == [69, 71, 72]
    assert score.report["grace_dropped"] == 2 and score.report["chord_symbols_ignored"] == 1


# -- items ----------------------------------------------------------------------------------------
def test_a_book_is_read_tune_by_tune_and_a_bad_tune_fails_alone(tmp_path: Path) -> None:
    text = "%header comment\nM:4/4\nL:1/8\n\nX:1\nT:a\nK:C\nCDEF|GABc|\n\nX:2\nT:b\nK:C\n(0CDE|F|\n\nX:03\nT:c\nK:D\nd4|f4|\n"
    items = read_abc(write(tmp_path, text, "book.abc"))
    assert [type(i).__name__ for i in items] == ["Score", "ItemFailure", "Score"]
    first, bad, third = items
    assert isinstance(first, Score) and first.meta.id == "book.abc#X:1"
    assert isinstance(bad, ItemFailure) and bad.item == "2" and bad.reason == "parse_error"
    assert (
        isinstance(third, Score) and third.meta.collection_item == "03"
    )  # as written, like the reference
    assert third.notes[1].pitch == 78  # the file header's L: and M: reach every tune


def test_bad_input_raises_with_a_reason(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.abc"
    bad.write_bytes("X:1\nT:caf\xe9\nK:C\nC|\n".encode("latin-1"))
    with pytest.raises(ScoreParseError) as info:
        read_abc(bad)
    assert info.value.reason == "encoding"
    with pytest.raises(Unsupported):
        read_abc(write(tmp_path, "X:1\nL:1/8\nK:C\nC|D|\n"), expand_repeats=True)
    with pytest.raises(ScoreParseError):  # no L: and no M: -> no note length (music21 fails too)
        read_abc(write(tmp_path, "X:1\nK:C\nCDEF|\n"))


# -- bars and everything else, against music21 itself ---------------------------------------------
EXCERPTS = {
    "pickup and full bars": "M:3/4\nL:1/8\nK:G\nd|g2 ga bg|d3 B GB|A6:|",
    "line-start fragments": "M:4/2\nL:1/4\nK:G\nG2 | _B2B2c2c2 | d4d4\nz2d4d2 | d2e2=f2d2 | d4z2\nd2 | c8 |",
    "field line after a bar": "M:2/4\nL:1/8\nK:G\nab|cdef|\nK:D\nfedc|\nM:3/4\nQ:1/4=80\ncdefga|",
    "overfull bars split": "M:3/4\nL:1/8\nK:G\nabc|def|gabcde|fgabcdefga|b6|ab|cdefgabcdefgabc|d4|efgab|",
    "remainder 3/4 or 6/8": "M:2/4\nL:1/8\nK:C\ncd|efgabcde|fgab|cdef|gabc d2efg2|",
    "chord split at the end": "M:2/4\nL:1/4\nK:D\n[F4 A4 d4 f4]|z4|\\\nP:A\nB,/4C/4|D/2F/2 F/2^G/4^A/4|B/2F/2 F/2d/2|",
    "split chord, plain bar": "M:2/4\nL:1/8\nK:D\nab|cd[ce]3|e4|f4|[ce]5|e2|f4|",
    "split chord, repeat bar": "M:2/4\nL:1/16\nK:D\nab|[d3d]ef^f [c4g4] :|[c4g4]e4||",
    "no bar lines": "M:3/4\nL:1/4\nK:C\nC D E F G A B c d e f",
    "meter none": "M:none\nL:1/4\nK:E\nA2A2A2 | A2B2=c2A2A4 | z2\n=c2c2c2 | B4A2B2A2A4",
    "two voices": "M:4/4\nL:1/4\nK:C\nV:1\nCDEF|GABc|\nV:2\nC,D,E,F,|G,A,B,C|",
    "bass clef in the last bar": "M:4/4\nL:1/4\nK:C bass\nCDEF|GABc|",
    "inline fields are empty chords": "M:4/4\nL:1/8\nK:C\nCDEF [K:G]GABc|[L:1/4]cdef|(3[M:3/4]ABcd|",
    "repeats and endings": "M:4/4\nL:1/4\nK:C\n|:CDEF|GABc:|[1 cBAG:|2 FEDC|]::c4|",
    "tuplets p:q:r and continuation": "M:6/8\nL:1/8\nK:C\n(3:2:4ABcd e2|\\\n(5ABcde f|(2AB c2 d2|",
    "ties across bars and slurs": "M:2/4\nL:1/8\nK:F\n(AB-|B)c d2-|d4|[CE]-[CE] B,2|",
    "spacers, comments, rests": "M:4/4\nL:1/8\nK:C\nA y B z2 c4 % a comment\n|z8|Z|d8|",
}


@pytest.mark.parametrize("name", sorted(EXCERPTS))
def test_excerpt_reads_like_music21(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, "X:1\nT:excerpt\n" + EXCERPTS[name] + "\n")
    fast, ref = read_abc(path, quirks=True), read_music21(path)
    assert len(fast) == len(ref) == 1
    f, r = fast[0], ref[0]
    assert isinstance(f, Score) and isinstance(r, Score)
    assert [(b.length, b.meter, b.pickup) for b in f.bars] == [
        (b.length, b.meter, b.pickup) for b in r.bars
    ]
    assert f.notes == r.notes
    assert (f.tempos, f.key, f.meta.title, len(f.parts)) == (
        r.tempos,
        r.key,
        r.meta.title,
        len(r.parts),
    )


@pytest.mark.parametrize(
    "name",
    [
        "ryansMammoth/AcaciaReel.abc",
        "ryansMammoth/AdmiralsHornpipe.abc",
        "ryansMammoth/RumAndOnionsJig.abc",
        "josquin/laPlusDesPlus.abc",
    ],
)
def test_real_files_read_like_music21(name: str) -> None:
    path = m21_path(name)
    fast, ref = read_abc(path, quirks=True), read_music21(path)
    assert [s.meta for s in fast if isinstance(s, Score)] == [
        s.meta for s in ref if isinstance(s, Score)
    ]
    for f, r in zip(fast, ref, strict=True):
        assert isinstance(f, Score) and isinstance(r, Score)
        assert (f.notes, f.bars, f.tempos, f.key) == (r.notes, r.bars, r.tempos, r.key)


@pytest.mark.slow
def test_a_book_reads_like_music21() -> None:
    path = m21_path("essenFolksong/altdeu10.abc")
    fast, ref = read_abc(path, quirks=True), read_music21(path)
    assert len(fast) == len(ref)
    same = sum(
        1
        for f, r in zip(fast, ref, strict=True)
        if isinstance(f, Score) and isinstance(r, Score) and (f.notes, f.bars) == (r.notes, r.bars)
    )
    assert same >= 0.99 * len(ref)


# -- where music21 is wrong, we read what the source says -----------------------------------------
def test_a_fermata_note_is_kept(tmp_path: Path) -> None:
    # airdsAirs/book1.abc X:0100 writes `Hg3`: a g with a fermata. music21 drops every
    # `H`-prefixed note, so its bar is three eighths short and everything after moves.
    score = one(tmp_path, "d2B Hg3|e2f g3|", "X:1\nM:6/8\nL:1/8\nK:G\n")
    assert (Q(3, 2), 79, Q(3, 2)) in keys(score)
    assert [b.length for b in score.bars] == [Q(3), Q(3)]


def test_an_invisible_rest_takes_its_time(tmp_path: Path) -> None:
    # `x` is an invisible rest (airdsAirs/book3.abc X:0406); music21 drops it and its time.
    score = one(tmp_path, "x2 c2 d4|c8|")
    assert keys(score)[0] == (Q(1), 72, Q(1)) and score.bars[0].length == 4


def test_a_note_under_a_right_annotation_is_kept(tmp_path: Path) -> None:
    # oneills1850/0051-0100.abc X:67 writes `">"c`: an accent-like annotation to the right of c;
    # music21 reads it as a chord symbol and drops the note.
    score = one(tmp_path, 'A">"B c2 d4|c8|')
    assert [n.pitch for n in score.notes][:2] == [69, 71] and score.bars[0].length == 4


# -- quirks=True: music21's misreadings reproduced and named, for crosschecks ---------------------
QUIRK_CASES = [
    (  # ABC 2.1: an accidental holds to the bar's end, every octave; music21: only the note
        "accidental-not-carried",
        "M:4/4\nL:1/8\nK:C\n^c c c' d5|c4 =F ^F F2|",
        [(0, 73, Q(1, 2)), (Q(1, 2), 73, Q(1, 2)), (1, 85, Q(1, 2)), (Q(3, 2), 74, Q(5, 2)),
         (4, 72, 2), (6, 65, Q(1, 2)), (Q(13, 2), 66, Q(1, 2)), (7, 66, 1)],
    ),
    (  # into a chord (C#) and out of one (G#); music21 carries neither
        "accidental-not-carried",
        "M:4/4\nL:1/8\nK:C\n^c [ce] [^GB] G2 z3|c8|",
        [(0, 73, Q(1, 2)), (Q(1, 2), 73, Q(1, 2)), (Q(1, 2), 76, Q(1, 2)), (1, 68, Q(1, 2)),
         (1, 71, Q(1, 2)), (Q(3, 2), 68, 1), (4, 72, 4)],
    ),
    (  # `Hg3`: a g with a fermata; music21 drops it and its time
        "fermata-note-dropped",
        "M:6/8\nL:1/8\nK:G\nd2B Hg3|e2f g3|",
        [(0, 74, 1), (1, 71, Q(1, 2)), (Q(3, 2), 79, Q(3, 2)), (3, 76, 1), (4, 78, Q(1, 2)),
         (Q(9, 2), 79, Q(3, 2))],
    ),
    (  # `x2`: an invisible rest that takes its time; music21 drops it and the bar shrinks
        "invisible-rest-dropped",
        "M:4/4\nL:1/8\nK:C\nc2 x2 d4|c8|",
        [(0, 72, 1), (2, 74, 2), (4, 72, 4)],
    ),
    (  # `">"B`: an annotation right of B; music21 takes it for a chord symbol and drops B
        "annotation-note-dropped",
        'M:4/4\nL:1/8\nK:C\nA">"B c2 d4|c8|',
        [(0, 69, Q(1, 2)), (Q(1, 2), 71, Q(1, 2)), (1, 72, 1), (2, 74, 2), (4, 72, 4)],
    ),
    (  # `[CE]2-[CE]2`: each chord note tied on; music21 ignores a tie after a chord
        "chord-tie-ignored",
        "M:4/4\nL:1/8\nK:C\n[CE]2-[CE]2 z4|c8|",
        [(0, 60, 2), (0, 64, 2), (4, 72, 4)],
    ),
]  # fmt: skip


@pytest.mark.parametrize(("quirk", "body", "expected"), QUIRK_CASES)
def test_each_quirk_reproduces_music21_and_is_named(
    tmp_path: Path, quirk: str, body: str, expected: list[tuple[Fraction, int, Fraction]]
) -> None:
    path = write(tmp_path, "X:1\nT:t\n" + body + "\n")
    right, quirked, ref = read_abc(path)[0], read_abc(path, quirks=True)[0], read_music21(path)[0]
    assert isinstance(right, Score) and isinstance(quirked, Score) and isinstance(ref, Score)
    tokenizer = Tokenizer()
    # what the source says, which music21 does not read
    assert keys(right) == expected
    assert len(right.bars) == 2 and all(b.length == b.meter.length for b in right.bars)
    assert not any(k.startswith(QUIRK_PREFIX) for k in right.report)
    assert compare_scores(right, ref, tokenizer).verdict == "different"
    # music21's reading, token for token, with exactly this misreading named
    assert compare_scores(quirked, ref, tokenizer).verdict == "identical"
    assert [k for k in quirked.report if k.startswith(QUIRK_PREFIX)] == [QUIRK_PREFIX + quirk]
    # and the crosscheck turns the difference into a named music21 error
    [verdict] = compare_items(
        [right], [ref], tokenizer, quirks_reading=lambda: read_abc(path, quirks=True)
    )
    assert verdict.verdict == "reference_error" and quirk in verdict.cause


def test_quirks_on_a_tune_without_any_change_nothing(tmp_path: Path) -> None:
    path = m21_path("ryansMammoth/AcaciaReel.abc")
    assert read_abc(path, quirks=True) == read_abc(path) == read_abc(path, expand_repeats=False)
    # where a quirk's construct changes nothing, it is not counted: c is C# in D anyway, the
    # chord's tie reaches no note of its pitches, a lone `H` is no note
    book = write(tmp_path, "L:1/8\nM:2/4\n\nX:1\nK:D\n^c c [ce]- d|H c2 d2|\n", "b.abc")
    [right], [quirked] = read_abc(book), read_abc(book, quirks=True)
    assert isinstance(quirked, Score) and quirked == right
    assert not any(k.startswith(QUIRK_PREFIX) for k in quirked.report)


# -- the remainder meter ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("total", "lengths", "expected"),
    [
        (Q(1, 2), [Q(1, 2)], Meter(1, 8)),
        (Q(2), [Q(1, 2)] * 4, Meter(2, 4)),
        (Q(11, 2), [Q(1, 2)] * 11, Meter(11, 8)),
        (Q(3), [Q(1)] * 3, Meter(3, 4)),
        (Q(3), [Q(3, 2), Q(1, 2), Q(1), Q(1, 2)][:3], Meter(6, 8)),
    ],
)
def test_best_time_signature_matches_music21(
    total: Fraction, lengths: list[Fraction], expected: Meter
) -> None:
    events, onset = [], Q(0)
    for length in lengths:
        events.append((onset, length, True))
        onset += length
    assert best_time_signature(total, events) == expected


# -- safety ----------------------------------------------------------------------------------------
SEED_TUNES = [m21_path("ryansMammoth/AcaciaReel.abc"), m21_path("josquin/laPlusDesPlus.abc")]


def _mutants(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    text = data.decode("utf-8", "replace")
    no_bars = text.replace("|", " ") if seed % 2 else text.replace("|", "", rng.randrange(1, 9))
    cut = rng.randrange(len(text))
    return [
        mutate(data, seed),
        data[: rng.randrange(len(data))],
        no_bars.encode(),
        (
            text[:cut] + rng.choice(["(", "[", '"', "{", "!", "(9:", "[K:", "\\", "%"]) + text[cut:]
        ).encode(),
    ]


@pytest.mark.parametrize("seed", range(12))
def test_mutants_only_raise_parse_errors_quickly(tmp_path: Path, seed: int) -> None:
    for source in SEED_TUNES:
        for k, data in enumerate(_mutants(source.read_bytes(), seed)):
            path = tmp_path / f"m{seed}-{k}.abc"
            path.write_bytes(data)
            started = time.process_time()
            try:
                items = read_abc(path)
            except (ScoreParseError, Unsupported):
                continue
            finally:
                assert time.process_time() - started < 5
            assert all(isinstance(i, (Score, ItemFailure)) for i in items)


def test_a_megabyte_line_is_refused_quickly(tmp_path: Path) -> None:
    started = time.process_time()
    with pytest.raises(ScoreParseError) as info:
        read_abc(abc_megabyte_line(tmp_path))
    assert info.value.reason == "too_large" and time.process_time() - started < 2


@pytest.mark.corpus
def test_a_long_tune_under_the_limit_reads_in_bounded_time(tmp_path: Path) -> None:
    body = "CDEF GABc|" * ((MAX_TUNE_CHARS - 100) // 10)
    started = time.process_time()  # CPU time: a loaded machine must not fail it
    score = one(tmp_path, body)
    assert len(score.notes) > 70_000 and time.process_time() - started < 20


ALPHABET = [*list("ABCDEFGabcdefgzxyZH^_=,'/23458|:[]{}()<>-.~!\"\\ \n%"), "K:", "M:3/4", "L:1/16"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(ALPHABET), max_size=120), st.booleans())
def test_random_token_soup_never_crashes(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str], quirks: bool
) -> None:
    path = tmp_path_factory.mktemp("soup") / "soup.abc"
    path.write_text("X:1\nM:4/4\nL:1/8\nK:C\n" + "".join(parts) + "\n")
    try:
        items = read_abc(path, quirks=quirks)
    except (ScoreParseError, Unsupported):
        return
    for item in items:
        if isinstance(item, Score):
            item.validate()
