from __future__ import annotations

from collections import Counter
from fractions import Fraction
from pathlib import Path

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
    out = tmp_path / "synthetic"
    result = CliRunner().invoke(main, ["data", "synth", "--pieces", "12", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(out.rglob("*.mid"))) == 12
    yaml_text = result.output.split("\n", 1)[1]
    (tmp_path / "synthetic.yaml").write_text(yaml_text)
    assert len(load_declaration(tmp_path / "synthetic.yaml").files(tmp_path)) == 12
    bad = CliRunner().invoke(main, ["data", "synth", "--pieces", "0", "--out", str(out)])
    assert bad.exit_code != 0 and "--pieces" in bad.output
