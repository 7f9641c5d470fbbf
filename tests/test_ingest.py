from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from pipeline.corpora import load_declaration
from pipeline.ledger import merge, summary
from pipeline.score_store import iter_scores
from pipeline.stages import ingest
from pipeline.stages.ingest import IngestConfig
from tests.conftest import TEST_DATA, m21_path

BROKEN = {
    "empty.mid": "empty_file",
    "truncated.mid": "bad_midi",
    "malformed.musicxml": "malformed_xml",
    "not_a_zip.mxl": "bad_zip",
    "zip_without_musicxml.mxl": "not_musicxml_zip",
    "latin1.abc": "encoding",
    "hangs.musicxml": "timeout",
}
GOOD = {"edge_cases.musicxml": 1, "two_tunes.abc": 2, "no_notes.musicxml": 1, "bwv66.6.mxl": 1}
MIXED = {"book_with_bad_tune.abc": ["accepted", "quarantined:parse_error", "accepted"]}


def make_corpus(tmp_path: Path) -> tuple[Path, Path]:
    """A directory corpus mixing real, hand-made and broken files, and its declaration."""
    data = tmp_path / "data" / "mixed"
    data.mkdir(parents=True)
    for name in [*BROKEN, *GOOD, *MIXED]:
        if name == "hangs.musicxml":
            shutil.copy(TEST_DATA / "edge_cases.musicxml", data / name)
        elif name == "bwv66.6.mxl":
            shutil.copy(m21_path("bach/bwv66.6.mxl"), data / name)
        else:
            shutil.copy(TEST_DATA / name, data / name)
    decl = tmp_path / "mixed.yaml"
    decl.write_text(
        "name: mixed\ndescription: broken and good files\n"
        "source: {kind: directory, path: mixed, include: ['*']}\n"
        "genre: other\ncomposer: Tester\nlicence: test\nredistributable: true\npriority: 1\n"
    )
    return tmp_path / "data", decl


@pytest.fixture
def hanging_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate a parser that never returns on one file (the child inherits the patch by fork)."""
    real = ingest.read_items

    def read(path: str, **kw: object) -> object:
        if path.endswith("hangs.musicxml"):
            time.sleep(120)
        return real(path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest, "read_items", read)


def test_every_input_ends_accepted_or_quarantined_with_a_specific_reason(
    tmp_path: Path, hanging_reader: None
) -> None:
    root, decl_path = make_corpus(tmp_path)
    decl = load_declaration(decl_path)
    files = decl.files(root)
    assert len(files) == len(BROKEN) + len(GOOD) + len(MIXED)
    cfg = IngestConfig(timeout_s=5, memory_mb=2048)
    result = ingest.run(files, {"mixed": decl}, cfg, tmp_path / "cache", scheduler="inline")
    by_file: dict[str, list[str]] = {}
    for d in result.decisions:
        by_file.setdefault(d.rel_path, []).append(d.status)
    for name, reason in BROKEN.items():
        assert by_file[name] == [f"quarantined:{reason}"], name
    for name, items in GOOD.items():
        assert by_file[name] == ["accepted"] * items, name
    for name, statuses in MIXED.items():
        assert by_file[name] == statuses, name
    n_inputs = len(BROKEN) + sum(GOOD.values()) + sum(len(v) for v in MIXED.values())
    info = summary(merge([result.decisions]), n_inputs=n_inputs)
    assert info["adds_up"] and info["quarantined"] == len(BROKEN) + 1
    assert "mixed/book_with_bad_tune.abc#X:2" in {d.id for d in result.decisions}
    ids = sorted(d.id for d in result.decisions)
    assert "mixed/two_tunes.abc#X:7" in ids and "mixed/bwv66.6.mxl" in ids

    out = tmp_path / "out"
    ingest.write_outputs(result, out)
    pieces, scores = (list(x) for x in zip(*iter_scores(out), strict=True))
    assert [p["id"] for p in pieces] == sorted(p["id"] for p in pieces)
    assert {p["composer"] for p in pieces} == {"Tester"}
    bach = next(s for s in scores if s.meta.id == "mixed/bwv66.6.mxl")
    original = next(s for (s, _) in result.scores if s.meta.id == "mixed/bwv66.6.mxl")
    assert bach == original  # exact through Parquet


def test_cache_makes_a_second_run_parse_nothing(tmp_path: Path) -> None:
    root, decl_path = make_corpus(tmp_path)
    decl = load_declaration(decl_path)
    files = [f for f in decl.files(root) if f.rel_path in GOOD or f.rel_path == "truncated.mid"]
    cfg = IngestConfig(timeout_s=30)
    first = ingest.run(files, {"mixed": decl}, cfg, tmp_path / "cache", scheduler="inline")
    second = ingest.run(files, {"mixed": decl}, cfg, tmp_path / "cache", scheduler="inline")
    assert (first.parsed, second.parsed, second.cached) == (len(files), 0, len(files))
    assert first.decisions == second.decisions
    assert [s for s, _ in first.scores] == [s for s, _ in second.scores]
    # A changed file is parsed again; the others still come from the cache.
    (root / "mixed" / "edge_cases.musicxml").write_text(
        (TEST_DATA / "edge_cases.musicxml").read_text().replace("G</step>", "A</step>", 1)
    )
    third = ingest.run(files, {"mixed": decl}, cfg, tmp_path / "cache", scheduler="inline")
    assert third.parsed == 1


def test_outputs_are_byte_identical_across_runs(tmp_path: Path) -> None:
    root, decl_path = make_corpus(tmp_path)
    decl = load_declaration(decl_path)
    files = [f for f in decl.files(root) if f.rel_path in GOOD]
    outs = []
    for run in range(2):
        result = ingest.run(
            files, {"mixed": decl}, IngestConfig(), tmp_path / f"cache{run}", scheduler="inline"
        )
        ingest.write_outputs(result, tmp_path / f"out{run}")
        outs.append({p.name: p.read_bytes() for p in (tmp_path / f"out{run}").iterdir()})
    assert outs[0] == outs[1]
