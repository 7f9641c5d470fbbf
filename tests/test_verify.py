from __future__ import annotations

from fractions import Fraction as F
from pathlib import Path

import pytest

from pipeline.music.meter import MeterConfig
from pipeline.music.pitch import fold_pitches
from pipeline.score import Meter, Note, Score, ScoreMeta, TempoChange, bars_from_meters
from pipeline.stages.verify import (
    VerifyConfig,
    check,
    composer_check,
    names_match,
    truncation,
)

KNOWN = ["Bach", "CPEBach", "Mozart", "Beethoven", "Chopin", "ClaraSchumann", "Schumann"]


def score_of(
    notes: list[tuple[F, int, F]], bars: int = 4, meter: str = "4/4", bpm: float = 100
) -> Score:
    return Score(
        ScoreMeta("s"),
        tuple(sorted(Note(o, p, d) for o, p, d in notes)),
        bars_from_meters([Meter.parse(meter)] * bars),
        tempos=(TempoChange(F(0), bpm),),
    ).validate()


ROW = {"composer": "Bach", "source_composer": "Johann Sebastian Bach"}


@pytest.mark.parametrize(
    ("score", "row", "reason"),
    [
        (score_of([]), ROW, "no_notes"),
        (score_of([(F(0), 60, F(1))], bars=1), ROW, "too_short"),
        (score_of([(F(0), 15, F(1))]), ROW, "pitch_range"),
        (score_of([(F(0), 60, F(1))], bpm=900), ROW, "tempo_out_of_range"),
        (
            score_of([(F(0), 60, F(1))]),
            {"composer": "Bach", "source_composer": "W. A. Mozart"},
            "composer_mismatch:Mozart",
        ),
        (score_of([(F(0), 60, F(1))], meter="5/8"), ROW, "meter:5/8"),
        (score_of([(F(0), 60, F(1))]), ROW, None),
    ],
)
def test_checks_return_machine_readable_reasons(
    score: Score, row: dict[str, str], reason: str | None
) -> None:
    assert check(score, row, VerifyConfig(), MeterConfig(), KNOWN) == reason


def test_octave_fold_is_a_declared_option() -> None:
    s = score_of([(F(0), 15, F(1)), (F(1), 112, F(1)), (F(2), 60, F(1))])
    assert check(s, ROW, VerifyConfig(pitch_policy="fold"), MeterConfig(), KNOWN) is None
    folded, moved = fold_pitches(s, 21, 108)
    assert moved == 2 and sorted(n.pitch for n in folded.notes) == [27, 60, 100]
    assert folded.report["octave_folded"] == 2


@pytest.mark.parametrize(
    ("label", "source", "match"),
    [
        ("Bach", "J.S. Bach", True),
        ("CPEBach", "Carl Philipp Emanuel Bach", True),
        ("CPEBach", "C. P. E. Bach", True),
        ("ClaraSchumann", "Clara Schumann", True),
        ("ClaraSchumann", "Robert Schumann", False),
        ("Chopin", "Chopin, Frédéric", True),
        ("Mozart", "Johann Strauss", False),
    ],
)
def test_composer_names(label: str, source: str, match: bool) -> None:
    assert names_match(label, source) is match


def test_unknown_names_are_not_mismatches() -> None:
    assert composer_check("Bach", "Arranged by Someone Else", KNOWN) is None
    assert composer_check("ClaraSchumann", "Robert Schumann", KNOWN) == "composer_mismatch:Schumann"
    assert composer_check(None, "W. A. Mozart", KNOWN) is None


def test_a_reading_short_of_the_source_measures_is_truncated() -> None:
    from fractions import Fraction

    from pipeline.score import Bar, Meter, Note, ScoreMeta

    bars = tuple(Bar(Fraction(4 * i), Fraction(4), Meter(4, 4)) for i in range(8))
    notes = tuple(Note(Fraction(4 * i), 60, Fraction(4)) for i in range(8))
    score = Score(ScoreMeta("x"), notes, bars)
    cfg = VerifyConfig()
    assert truncation(score, cfg) is None  # nothing counted (MIDI): nothing to compare
    assert truncation(score.with_counts({"source_measures": 9}), cfg) is None  # within slack
    assert truncation(score.with_counts({"source_measures": 10}), cfg) == "truncated:8/10"
    long = score.with_counts({"source_measures": 69})
    assert check(long, ROW, cfg, MeterConfig(), KNOWN) == "truncated:8/69"
    assert truncation(long, VerifyConfig(max_bars_lost=61)) is None
    # bars intact, notes lost (music21 drops a chord whose member it cannot parse)
    assert truncation(score.with_counts({"source_notes": 8}), cfg) is None
    assert truncation(score.with_counts({"source_notes": 10}), cfg) == "notes_lost:8/10"


def _cut(score: Score, bars: int, drop_every: int = 0) -> Score:
    """The reading a lossy parser gives: the first `bars` bars, and every `drop_every`th note
    dropped (0: none), as music21 drops measures or chords it cannot parse."""
    kept = score.bars[:bars]
    end = kept[-1].start + kept[-1].length
    notes = [n for n in score.notes if n.onset + n.duration <= end]
    if drop_every:
        notes = [n for i, n in enumerate(notes) if i % drop_every]
    return score.replace(notes=tuple(notes), bars=kept)


# One real file per notation format (MIDI writes no measures: a cut MIDI file is `bad_midi`).
WORKS = ["bach/bwv66.6.mxl", "ciconia/quod_jactatur.xml", "bach/bwv277.krn", "airdsAirs/book1.abc"]


@pytest.mark.parametrize("work", WORKS)
def test_a_real_file_read_short_is_quarantined_in_every_format(
    work: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from music21 import corpus

    from pipeline.stages import ingest_read as ingest

    path = str(corpus.getWork(work))
    whole = next(
        s for s in ingest.parse_job(ingest.ParseJob(path, False, None)) if isinstance(s, Score)
    )
    cfg, row = VerifyConfig(), {"composer": None, "source_composer": ""}
    measures, written = int(whole.report["source_measures"]), int(whole.report["source_notes"])
    assert truncation(whole, cfg) is None  # the fast reader reads what the file writes
    assert written >= len(whole.notes) >= 0.98 * written
    read_items = ingest.read_items
    for cut, reason in [
        (lambda s: _cut(s, len(s.bars) // 2), "truncated"),
        (lambda s: _cut(s, len(s.bars), drop_every=10), "notes_lost"),
    ]:
        monkeypatch.setattr(
            ingest,
            "read_items",
            lambda p, cut=cut, **kw: [
                cut(s) if isinstance(s, Score) else s for s in read_items(p, **kw)
            ],
        )
        short = next(
            s for s in ingest.parse_job(ingest.ParseJob(path, False, None)) if isinstance(s, Score)
        )
        read = len(short.bars) if reason == "truncated" else len(short.notes)
        source = measures if reason == "truncated" else written
        assert check(short, row, cfg, MeterConfig(), KNOWN) == f"{reason}:{read}/{source}"


def test_a_midi_file_read_short_is_quarantined_notes_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.stages import ingest_read as ingest
    from pipeline.synthetic import midi_bytes, piece

    path = tmp_path / "p.mid"
    path.write_bytes(midi_bytes(piece(0, 0)))
    (whole,) = ingest.parse_job(ingest.ParseJob(str(path), False, None))
    assert isinstance(whole, Score) and truncation(whole, VerifyConfig()) is None
    written = int(whole.report["source_notes"])
    assert written == len(whole.notes) and "source_measures" not in whole.report
    read_items = ingest.read_items
    monkeypatch.setattr(
        ingest,
        "read_items",
        lambda p, **kw: [_cut(s, len(s.bars), 10) for s in read_items(p, **kw)],
    )
    (short,) = ingest.parse_job(ingest.ParseJob(str(path), False, None))
    assert isinstance(short, Score)
    reason = check(short, {"composer": None}, VerifyConfig(), MeterConfig(), KNOWN)
    assert reason == f"notes_lost:{len(short.notes)}/{written}"


def test_a_midi_file_cut_short_is_bad_midi(tmp_path: Path) -> None:
    from pipeline.errors import ScoreParseError
    from pipeline.stages import ingest_read as ingest
    from pipeline.synthetic import midi_bytes, piece

    data = midi_bytes(piece(0, 0))
    path = tmp_path / "cut.mid"
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ScoreParseError) as failed:
        ingest.parse_job(ingest.ParseJob(str(path), False, None))
    assert failed.value.reason == "bad_midi"
