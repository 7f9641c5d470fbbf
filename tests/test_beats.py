from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.corpora import load_declaration
from pipeline.errors import MeterError, ScoreParseError
from pipeline.music.prepare import prepare
from pipeline.readers import read_scores
from pipeline.readers.beats import apply_beat_file, read_beat_file
from pipeline.stages import ingest
from pipeline.stages.ingest import IngestConfig


def test_pop909_beat_file_replaces_the_bogus_1_4_meter(data_root: Path) -> None:
    song = data_root / "pop909" / "010"
    raw = read_scores(song / "010.mid")[0]
    fixed = apply_beat_file(raw, song / "beat_midi.txt")
    _, downbeats = read_beat_file(song / "beat_midi.txt")
    assert fixed.report["beat_file_meter"] == 1
    assert len(fixed.notes) == len(raw.notes)
    assert fixed.bars[1].meter.denominator == 4 and "4/4" in fixed.meters()
    assert sum(downbeats) - 1 <= len(fixed.bars) <= sum(downbeats) + 2
    prepared, _ = prepare(fixed)  # every bar now normalises
    assert set(prepared.meters()) <= {"2/4", "3/4", "4/4", "3/8", "6/8"}


def test_files_declared_in_1_4_need_the_override(data_root: Path) -> None:
    # 617 of POP909's files declare 1/4 throughout (shared/data/README.md): the first of them.
    song = next(
        d for d in sorted((data_root / "pop909").iterdir())
        if d.is_dir() and set(read_scores(d / f"{d.name}.mid")[0].meters()) == {"1/4"}
    )  # fmt: skip
    raw = read_scores(song / f"{song.name}.mid")[0]
    with pytest.raises(MeterError, match="1/4"):
        prepare(raw)
    prepared, _ = prepare(apply_beat_file(raw, song / "beat_midi.txt"))
    assert "4/4" in prepared.meters()


def test_bad_beat_files(tmp_path: Path) -> None:
    bad = tmp_path / "beats.txt"
    bad.write_text("0.5 1 1\n0.4 0 0\n")
    with pytest.raises(ScoreParseError, match="must increase"):
        read_beat_file(bad)
    bad.write_text("0.5 1 0\n1.0 0 0\n")
    with pytest.raises(ScoreParseError, match="downbeat"):
        read_beat_file(bad)


def test_ingest_applies_the_override_and_a_changed_beat_file_misses_the_cache(
    tmp_path: Path, data_root: Path
) -> None:
    folder = tmp_path / "data" / "pop" / "010"
    folder.mkdir(parents=True)
    for name in ("010.mid", "beat_midi.txt"):
        shutil.copy(data_root / "pop909" / "010" / name, folder / name)
    decl_path = tmp_path / "pop.yaml"
    decl_path.write_text(
        "name: pop\ndescription: d\nsource: {kind: directory, path: pop, include: ['*/*.mid']}\n"
        "genre: pop\nlicence: MIT\nredistributable: true\npriority: 1\n"
        "meter_override: {kind: beat_file, file: beat_midi.txt}\n"
    )
    decl = load_declaration(decl_path)
    files = decl.files(tmp_path / "data")
    first = ingest.run(files, {"pop": decl}, IngestConfig(), tmp_path / "cache", scheduler="inline")
    assert next(first.scores())[0].report["beat_file_meter"] == 1
    again = ingest.run(files, {"pop": decl}, IngestConfig(), tmp_path / "cache", scheduler="inline")
    assert again.parsed == 0
    beats = folder / "beat_midi.txt"
    lines = beats.read_text().splitlines()
    beats.write_text("\n".join(lines[:-3]) + "\n")  # a shorter annotation
    changed = ingest.run(
        files, {"pop": decl}, IngestConfig(), tmp_path / "cache", scheduler="inline"
    )
    assert changed.parsed == 1
