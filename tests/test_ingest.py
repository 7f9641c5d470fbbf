from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest

from pipeline.corpora import CorpusDecl, load_declaration
from pipeline.errors import GnmError
from pipeline.io.score_store import iter_scores
from pipeline.ledger import merge, summary
from pipeline.readers import ItemFailure, read_items
from pipeline.score import Score
from pipeline.stages import ingest, ingest_cache, ingest_read
from pipeline.stages.ingest import IngestConfig
from tests.helpers import REPO, TEST_DATA, m21_path

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
    real = ingest_read.read_items

    def read(path: str, **kw: object) -> object:
        if path.endswith("hangs.musicxml"):
            time.sleep(120)
        return real(path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_read, "read_items", read)


@pytest.mark.corpus
def test_every_input_ends_accepted_or_quarantined_with_a_specific_reason(
    tmp_path: Path, hanging_reader: None
) -> None:
    root, decl_path = make_corpus(tmp_path)
    decl = load_declaration(decl_path)
    files = decl.files(root)
    assert len(files) == len(BROKEN) + len(GOOD) + len(MIXED)
    cfg = IngestConfig(timeout_s=5, memory_mb=2048)
    result = ingest.run(files, {"mixed": decl}, cfg, tmp_path / "cache", scheduler="inline")
    decisions = result.decisions()
    by_file: dict[str, list[str]] = {}
    for d in decisions:
        by_file.setdefault(d.rel_path, []).append(d.status)
    for name, reason in BROKEN.items():
        assert by_file[name] == [f"quarantined:{reason}"], name
    for name, items in GOOD.items():
        assert by_file[name] == ["accepted"] * items, name
    for name, statuses in MIXED.items():
        assert by_file[name] == statuses, name
    n_inputs = len(BROKEN) + sum(GOOD.values()) + sum(len(v) for v in MIXED.values())
    info = summary(merge([decisions]), n_inputs=n_inputs)
    assert info["adds_up"] and info["quarantined"] == len(BROKEN) + 1
    assert "mixed/book_with_bad_tune.abc#X:2" in {d.id for d in decisions}
    ids = [d.id for d in decisions]
    assert ids == sorted(ids)
    assert "mixed/two_tunes.abc#X:7" in ids and "mixed/bwv66.6.mxl" in ids

    out = tmp_path / "out"
    assert ingest.write_outputs(result, out) == decisions
    pieces, scores = (list(x) for x in zip(*iter_scores(out), strict=True))
    assert [p["id"] for p in pieces] == sorted(p["id"] for p in pieces)
    assert {p["composer"] for p in pieces} == {"Tester"}
    bach = next(s for s in scores if s.meta.id == "mixed/bwv66.6.mxl")
    original = next(s for (s, _) in result.scores() if s.meta.id == "mixed/bwv66.6.mxl")
    assert bach == original  # exact through Parquet


def test_cache_makes_a_second_run_parse_nothing(tmp_path: Path) -> None:
    root, decl_path = make_corpus(tmp_path)
    decl = load_declaration(decl_path)
    files = [f for f in decl.files(root) if f.rel_path in GOOD or f.rel_path == "truncated.mid"]
    cfg = IngestConfig(timeout_s=30)
    first = ingest.run(files, {"mixed": decl}, cfg, tmp_path / "cache", scheduler="inline")
    second = ingest.run(files, {"mixed": decl}, cfg, tmp_path / "cache", scheduler="inline")
    assert (first.parsed, second.parsed, second.cached) == (len(files), 0, len(files))
    assert first.decisions() == second.decisions()
    assert [s for s, _ in first.scores()] == [s for s, _ in second.scores()]
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


def test_items_come_out_in_id_order_even_when_a_file_id_prefixes_another(tmp_path: Path) -> None:
    """`a.abc` holds items `a.abc#X:n`, but the file `a.abc !.abc` sorts before them: the merge
    must still yield every id in order (the writer refuses anything else)."""
    data = tmp_path / "data" / "mixed"
    data.mkdir(parents=True)
    for name in ("tunes.abc", "tunes.abc !.abc", "tunes.abc$.abc", "tunes.ab.abc"):
        shutil.copy(TEST_DATA / "two_tunes.abc", data / name)
    decl_path = tmp_path / "mixed.yaml"
    decl_path.write_text(
        "name: mixed\ndescription: d\nsource: {kind: directory, path: mixed, include: ['*']}\n"
        "genre: other\nlicence: test\nredistributable: true\npriority: 1\n"
    )
    decl = load_declaration(decl_path)
    with ingest.run(
        decl.files(tmp_path / "data"), {"mixed": decl}, IngestConfig(), None, scheduler="inline"
    ) as result:
        decisions = ingest.write_outputs(result, tmp_path / "out")
    ids = [d.id for d in decisions]
    assert len(ids) == 8 and ids == sorted(ids)
    assert ids.index("mixed/tunes.abc !.abc#X:1") < ids.index("mixed/tunes.abc#X:1")
    assert [row["id"] for row, _ in iter_scores(tmp_path / "out")] == ids


def test_outcomes_are_read_back_one_file_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, decl_path = make_corpus(tmp_path)
    decl = load_declaration(decl_path)
    files = [f for f in decl.files(root) if f.rel_path in GOOD]
    cache = tmp_path / "cache"
    ingest.run(files, {"mixed": decl}, IngestConfig(), cache, scheduler="inline").decisions()
    loads: list[Path] = []
    real = ingest.load_cached

    def counting(path: Path) -> object:
        loads.append(path)
        return real(path)

    monkeypatch.setattr(ingest, "load_cached", counting)
    result = ingest.run(files, {"mixed": decl}, IngestConfig(), cache, scheduler="inline")
    assert (result.parsed, loads) == (0, [])  # phase one only looks the outcomes up
    entries = result.entries()
    next(entries)
    assert len(loads) == 1  # lazily: the first item needed only the first file
    rest = list(entries)
    assert len(loads) == len(files) and len(set(loads)) == len(files)  # each file read once
    assert 1 + len(rest) == sum(GOOD.values())


def test_a_cache_entry_lost_between_the_phases_is_parsed_again(tmp_path: Path) -> None:
    root, decl_path = make_corpus(tmp_path)
    decl = load_declaration(decl_path)
    files = [f for f in decl.files(root) if f.rel_path in GOOD]
    cache = tmp_path / "cache"
    first = ingest.run(files, {"mixed": decl}, IngestConfig(), cache, scheduler="inline")
    expected = first.decisions()
    second = ingest.run(files, {"mixed": decl}, IngestConfig(), cache, scheduler="inline")
    assert second.parsed == 0
    victims = sorted(cache.rglob("*.json"))[:3]
    victims[0].write_text('{"items": [')  # torn by a bad disk
    victims[1].write_bytes(b"\xff\xfe garbage")  # not even UTF-8
    victims[2].write_text('{"items": [{"score": {"meta": 1}}]}')  # valid JSON, wrong layout
    assert second.decisions() == expected
    assert (second.parsed, second.cached) == (3, len(files) - 3)
    assert second.decisions() == expected and second.parsed == 3  # counted once, not per read
    third = ingest.run(files, {"mixed": decl}, IngestConfig(), cache, scheduler="inline")
    assert third.decisions() == expected and third.parsed == 0  # the entries were repaired


def test_without_a_cache_the_spool_is_removed_on_close(tmp_path: Path) -> None:
    root, decl_path = make_corpus(tmp_path)
    decl = load_declaration(decl_path)
    files = [f for f in decl.files(root) if f.rel_path in GOOD]
    with ingest.run(files, {"mixed": decl}, IngestConfig(), None, scheduler="inline") as result:
        spool = result._store
        assert any(spool.rglob("*.json"))
        assert len(result.decisions()) == sum(GOOD.values())
    assert not spool.exists()
    with pytest.raises(GnmError, match="after close"):
        result.decisions()


def test_a_failed_run_leaves_no_spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, decl_path = make_corpus(tmp_path)
    decl = load_declaration(decl_path)
    files = [f for f in decl.files(root) if f.rel_path in GOOD]
    spools: list[str] = []
    real = ingest.tempfile.TemporaryDirectory

    def recording(**kw: str) -> object:
        spool = real(**kw)
        spools.append(spool.name)
        return spool

    def interrupted(*args: object, **kw: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest.tempfile, "TemporaryDirectory", recording)
    monkeypatch.setattr(ingest, "iter_items", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest.run(files, {"mixed": decl}, IngestConfig(), None, scheduler="inline")
    assert len(spools) == 1 and not Path(spools[0]).exists()


def _reader_corpus(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    data = tmp_path / "data" / "two"
    data.mkdir(parents=True)
    shutil.copy(TEST_DATA / "edge_cases.musicxml", data / "edge_cases.musicxml")
    shutil.copy(m21_path("bach/bwv277.krn"), data / "bwv277.krn")
    decl = tmp_path / "two.yaml"
    decl.write_text(
        "name: two\ndescription: two files\nsource: {kind: directory, path: two, include: ['*']}\n"
        "genre: other\nlicence: test\nredistributable: true\npriority: 1\n" + extra
    )
    return tmp_path / "data", decl


def _readers(result: ingest.IngestResult) -> set[str]:
    return {row["reader"] for _, row in result.scores()}


def test_the_reader_is_chosen_by_params_then_declaration_then_a_forced_one(tmp_path: Path) -> None:
    root, path = _reader_corpus(tmp_path)
    decl = load_declaration(path)
    files = decl.files(root)
    cache = tmp_path / "cache"
    with ingest.run(files, {"two": decl}, IngestConfig(), cache, scheduler="inline") as fast:
        assert _readers(fast) == {"fast"}
        scores = [s for s, _ in fast.scores()]
        # every score carries its source's written counts for verify's truncation check
        assert all(s.report["source_measures"] > 0 and s.report["source_notes"] > 0 for s in scores)
    cfg = IngestConfig(reader="reference")
    with ingest.run(files, {"two": decl}, cfg, cache, scheduler="inline") as reference:
        assert _readers(reference) == {"reference"} and reference.parsed == 2  # its own cache key
    root, path = _reader_corpus(tmp_path / "b", "reader: reference\n")
    decl = load_declaration(path)
    with ingest.run(
        decl.files(root), {"two": decl}, IngestConfig(), cache, scheduler="inline"
    ) as r:
        assert _readers(r) == {"reference"}
    forced = ingest.run(
        decl.files(root), {"two": decl}, IngestConfig(), cache, scheduler="inline", reader="fast"
    )
    with forced:
        assert _readers(forced) == {"fast"}
    with pytest.raises(ValueError, match="reader must be one of"):
        IngestConfig(reader="slow")  # type: ignore[arg-type]


def test_a_fast_reader_change_keeps_the_reference_cache_key() -> None:
    ingest_cache.reader_version.cache_clear()
    try:
        fast, reference = (
            ingest_cache.reader_version("fast"),
            ingest_cache.reader_version("reference"),
        )
        assert fast != reference
    finally:
        ingest_cache.reader_version.cache_clear()
    # the reference key hashes only what the reference path runs
    assert (
        "fallback.py"
        not in ingest_cache._SHARED_READER_FILES + ingest_cache._REFERENCE_READER_FILES
    )
    assert (
        "musicxml.py"
        not in ingest_cache._SHARED_READER_FILES + ingest_cache._REFERENCE_READER_FILES
    )


def _m21_classical(*include: str, group_voices: bool = True) -> CorpusDecl:
    """The shipped m21-classical declaration, narrowed to `include`."""
    decl = load_declaration(REPO / "corpora" / "m21-classical.yaml")
    return dataclasses.replace(decl, include=include, group_voices=group_voices)


def test_the_josquin_books_ingest_as_8_pieces_and_every_voice_is_in_the_ledger(
    tmp_path: Path,
) -> None:
    decl = _m21_classical("josquin/*.abc")
    files = decl.files(None)
    assert len(files) == 8
    cfg, cache = IngestConfig(), tmp_path / "cache"
    with ingest.run(files, {decl.name: decl}, cfg, cache, scheduler="inline") as result:
        decisions = ingest.write_outputs(result, tmp_path / "out")
    info = summary(merge([decisions]), n_inputs=29)
    assert info["adds_up"]
    assert (info["accepted"], info["merged"], info["quarantined"]) == (8, 21, 0)
    status = {d.id: d.status for d in decisions}
    adieu = "m21-classical/josquin/adieuMesAmours.abc"
    assert status[f"{adieu}#X:1"] == "accepted"
    assert [status[f"{adieu}#X:{k}"] for k in (2, 3, 4)] == [f"merged_into:{adieu}#X:1"] * 3
    rows, scores = (list(x) for x in zip(*iter_scores(tmp_path / "out"), strict=True))
    assert [r["id"] for r in rows] == sorted(d.id for d in decisions if d.kind == "accepted")
    piece = next(s for s in scores if s.meta.id == f"{adieu}#X:1")
    assert [p.name for p in piece.parts] == ["Cantus", "Altus", "Tenor", "Bassus"]
    voices = read_items(m21_path("josquin/adieuMesAmours.abc"))
    assert len(piece.notes) == sum(len(v.notes) for v in voices if isinstance(v, Score))
    assert {r["composer"] for r in rows} == {"Josquin"}

    # The option is ingest's policy over cached readings: flipping it parses nothing.
    plain = _m21_classical("josquin/*.abc", group_voices=False)
    with ingest.run(files, {plain.name: plain}, cfg, cache, scheduler="inline") as again:
        assert again.parsed == 0
        kept = again.decisions()
    assert [d.id for d in kept] == [d.id for d in decisions]
    assert {d.status for d in kept} == {"quarantined:voice_of_multi_voice_piece"}


def test_an_ordinary_abc_book_is_untouched_by_the_voice_policy(tmp_path: Path) -> None:
    """Aird's Airs book 1 repeats titles and has a `V:` voice, yet every tune is its own item."""
    decl = load_declaration(REPO / "corpora" / "m21-folk.yaml")
    decl = dataclasses.replace(decl, include=("airdsAirs/book1.abc",), group_voices=True)
    files = decl.files(None)
    with ingest.run(files, {decl.name: decl}, IngestConfig(), None, scheduler="inline") as result:
        decisions = result.decisions()
        notes = [len(s.notes) for s, _ in result.scores()]
    items = read_items(files[0].path)
    assert len(decisions) == len(items) > 100
    assert [d.status for d in decisions if d.kind != "accepted"] == [
        f"quarantined:{i.reason}" for i in items if isinstance(i, ItemFailure)
    ]
    assert sorted(notes) == sorted(len(s.notes) for s in items if isinstance(s, Score))


def test_two_children_storing_one_cache_entry_at_once_both_succeed(tmp_path: Path) -> None:
    """Exact duplicates in two corpora share a cache entry, and each child stores its own."""
    import multiprocessing

    from pipeline.io.atomic import write_text_atomic

    target = tmp_path / "entry.json"

    def store() -> None:
        for _ in range(200):
            write_text_atomic(target, "x" * 100_000)

    children = [multiprocessing.get_context("fork").Process(target=store) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [c.exitcode for c in children] == [0, 0]
    assert target.read_text() == "x" * 100_000
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]
