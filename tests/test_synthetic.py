from __future__ import annotations

from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from gnm_model.cli import main
from pipeline import synthetic
from pipeline.corpora import load_declaration
from pipeline.readers import read_items
from pipeline.score import Score
from pipeline.stages import dedupe, ingest
from pipeline.stages.dedupe import DedupeConfig
from pipeline.stages.ingest import IngestConfig


def test_a_piece_is_a_function_of_seed_and_index() -> None:
    assert synthetic.piece(3, 17) == synthetic.piece(3, 17)
    assert synthetic.midi_bytes(synthetic.piece(3, 17)) == synthetic.midi_bytes(
        synthetic.piece(3, 17)
    )
    assert synthetic.piece(3, 17) != synthetic.piece(3, 18) != synthetic.piece(4, 17)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 1000), index=st.integers(0, 10**6))
def test_every_bar_is_filled_and_the_midi_reads_back_exactly(
    tmp_path_factory: object, seed: int, index: int
) -> None:
    p = synthetic.piece(seed, index)
    num, den = (int(x) for x in p.meter.split("/"))
    bar = Fraction(4 * num, den)
    last = max(n.onset + n.duration for n in p.melody)
    assert last == p.bars * bar  # the closing note ends the last bar
    assert all(n.onset + n.duration <= (n.onset // bar + 1) * bar for n in p.melody)

    path = Path(str(tmp_path_factory.mktemp("synth"))) / "x.mid"  # type: ignore[attr-defined]
    synthetic.write_midi(p, path)
    (score,) = read_items(path)
    assert isinstance(score, Score)
    assert len(score.bars) == p.bars and {str(b.meter) for b in score.bars} == {p.meter}
    assert len(score.tempos) == 1 and abs(score.tempos[0].bpm - p.bpm) < 0.01  # whole microseconds
    expected = sorted(
        (n.onset, n.pitch, n.duration, part)
        for part, notes in enumerate((p.melody, p.bass))
        for n in notes
    )
    got = sorted((n.onset, n.pitch, n.duration, n.part) for n in score.notes)
    assert got == expected


def test_a_synthetic_corpus_is_accepted_whole_and_has_no_duplicates(tmp_path: Path) -> None:
    root = tmp_path / "data"
    paths = synthetic.write_corpus(root / "synthetic", 60, seed=1)
    assert (
        len(paths) == 60 and paths[0].relative_to(root).as_posix() == "synthetic/00000/000000.mid"
    )
    decl_path = tmp_path / "synthetic.yaml"
    decl_path.write_text(synthetic.declaration("synthetic", "synthetic"))
    decl = load_declaration(decl_path)
    files = decl.files(root)
    assert len(files) == 60
    with ingest.run(files, {"synthetic": decl}, IngestConfig(), None, scheduler="inline") as result:
        pairs = list(result.scores())
    assert len(pairs) == 60
    meters = Counter(str(s.bars[0].meter) for s, _ in pairs)
    assert len(meters) >= 5  # a mix, including meters that normalisation splits
    decisions, groups, _ = dedupe.run([r for _, r in pairs], [s for s, _ in pairs], DedupeConfig())
    assert decisions == [] and len({g["group"] for g in groups}) == 60


def test_a_larger_corpus_extends_a_smaller_one(tmp_path: Path) -> None:
    small = synthetic.write_corpus(tmp_path, 5)
    before = {p: p.read_bytes() for p in small}
    large = synthetic.write_corpus(tmp_path, 8)
    assert large[:5] == small and all(p.read_bytes() == before[p] for p in small)
    assert synthetic.write_corpus(tmp_path, 3, start=8)[0].name == "000008.mid"


def test_gnm_data_synth_writes_files_and_a_valid_declaration(tmp_path: Path) -> None:
    out = tmp_path / "load" / "synthetic"
    args = ["data", "synth", "--pieces", "12", "--data-root", str(tmp_path)]
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(out.rglob("*.mid"))) == 12
    yaml_text = result.output.split(":\n", 1)[1]
    assert "path: load/synthetic" in yaml_text
    (tmp_path / "synthetic.yaml").write_text(yaml_text)
    assert len(load_declaration(tmp_path / "synthetic.yaml").files(tmp_path)) == 12
    bad = CliRunner().invoke(main, ["data", "synth", "--pieces", "0", "--out", str(out)])
    assert bad.exit_code != 0 and "--pieces" in bad.output
    outside = CliRunner().invoke(
        main,
        ["data", "synth", "--pieces", "1", "--out", str(tmp_path / "x"), "--data-root", str(out)],
    )
    assert outside.exit_code == 1 and "not under the data root" in outside.output
    assert not (tmp_path / "x").exists()  # refused before writing anything
    other_seed = CliRunner().invoke(main, [*args, "--out", str(out), "--seed", "7"])
    assert other_seed.exit_code == 1 and "use another folder" in other_seed.output


@pytest.mark.parametrize("meter", [m for m, _ in synthetic.METERS])
def test_every_meter_fills_its_bars_and_reads_back(meter: str, tmp_path: Path) -> None:
    index = next(i for i in range(10_000) if synthetic.piece(5, i).meter == meter)
    p = synthetic.piece(5, index)
    path = tmp_path / "x.mid"
    synthetic.write_midi(p, path)
    (score,) = read_items(path)
    assert isinstance(score, Score)
    num, den = (int(x) for x in meter.split("/"))
    assert [str(b.meter) for b in score.bars] == [meter] * p.bars
    assert all(b.length == Fraction(4 * num, den) for b in score.bars)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (0x7F, b"\x7f"),
        (0x80, b"\x81\x00"),
        (0x3FFF, b"\xff\x7f"),
        (0x4000, b"\x81\x80\x00"),
        (0x0FFFFFFF, b"\xff\xff\xff\x7f"),
    ],
)
def test_variable_length_quantities_follow_the_midi_standard(value: int, encoded: bytes) -> None:
    assert synthetic.vlq(value) == encoded


def test_a_repeated_note_ends_before_it_starts_again(tmp_path: Path) -> None:
    """Two notes of one pitch, end to end: the note-off must precede the note-on at the shared
    tick, or a reader pairs them wrongly."""
    notes = (
        synthetic.SynthNote(Fraction(0), Fraction(1), 60, 80),
        synthetic.SynthNote(Fraction(1), Fraction(3), 60, 80),
    )
    p = synthetic.SynthPiece("t", "4/4", 120.0, 1, notes, ())
    path = tmp_path / "t.mid"
    synthetic.write_midi(p, path)
    (score,) = read_items(path)
    assert isinstance(score, Score)
    assert [(n.onset, n.duration) for n in score.notes] == [(0, 1), (1, 3)]
