"""Crosscheck: two readings compared by their tokens, with the first difference and its cause."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline.crosscheck import below_target, compare_items, compare_scores
from pipeline.errors import ScoreParseError, Unsupported
from pipeline.readers import ItemFailure, read_items
from pipeline.score import Bar, Meter, Score, ScoreMeta
from pipeline.tokenizer import Tokenizer
from tests.helpers import TEST_DATA, m21_path


def _reference() -> Score:
    (score,) = read_items(TEST_DATA / "edge_cases.musicxml", reader="reference")
    assert isinstance(score, Score)
    return score


def test_same_reading_is_identical(tokenizer: Tokenizer) -> None:
    score = _reference()
    assert compare_scores(score, score, tokenizer).verdict == "identical"


def test_a_lost_note_is_named_with_its_bar_and_cause(tokenizer: Tokenizer) -> None:
    score = _reference()
    lost = score.notes[-1]
    short = score.replace(notes=score.notes[:-1])
    result = compare_scores(short, score, tokenizer)
    assert result.verdict == "different"
    assert result.bar == next(i for i, b in enumerate(score.bars) if b.start <= lost.onset < b.end)
    assert "1 only in reference" in result.cause and f"pitch {lost.pitch}" in result.cause


def test_an_extra_bar_is_the_cause_before_notes(tokenizer: Tokenizer) -> None:
    score = _reference()
    last = score.bars[-1]
    longer = (*score.bars, Bar(last.end, last.meter.length, last.meter))
    result = compare_scores(score.replace(bars=longer), score, tokenizer)
    assert result.verdict == "different"
    assert result.cause == f"bars: fast {len(longer)}, reference {len(score.bars)}"
    assert result.bar == len(score.bars) - 1 and result.fast_token == "Bar"


def test_a_meter_that_normalises_alike_is_identical(tokenizer: Tokenizer) -> None:
    score = _reference()  # 4/4 throughout: 2/2 maps onto 4/4, so the model sees the same
    bars = [Bar(b.start, b.length, Meter(2, 2), b.pickup) for b in score.bars]
    assert compare_scores(score.replace(bars=tuple(bars)), score, tokenizer).verdict == "identical"


def test_items_pair_by_collection_item_and_failures_are_classified(tokenizer: Tokenizer) -> None:
    book = read_items(TEST_DATA / "book_with_bad_tune.abc", reader="reference")
    fast = [book[0], ItemFailure("2", "unsupported:abc:x", "no"), book[2]]
    verdicts = {c.item: c.verdict for c in compare_items(fast, book, tokenizer)}
    assert verdicts["1"] == "identical" and verdicts["3"] == "identical"
    assert verdicts["2"] in ("fast_fell_back", "both_failed")
    whole = compare_items(Unsupported("abc:x"), book, tokenizer)
    assert {c.verdict for c in whole} == {"fast_fell_back"}
    failed = compare_items(book, ScoreParseError("boom"), tokenizer)
    assert [c.verdict for c in failed] == ["reference_failed"] * 3  # one per item, as ingest counts
    fell_back = [s.with_counts({"reader_fallback:abc:x": 1}) for s in book if isinstance(s, Score)]
    verdicts_back = [c.verdict for c in compare_items(fell_back, book, tokenizer)]
    assert verdicts_back == ["fast_fell_back", "reference_failed", "fast_fell_back"]


def test_below_target_only_counts_corpora_with_enough_items() -> None:
    report = {
        "by_corpus": {
            "big": {"items": 100, "identical_share": 0.98},
            "fine": {"items": 100, "identical_share": 0.995},
            "small": {"items": 10, "identical_share": 0.5},
        }
    }
    assert below_target(report, 0.99) == ["big"]


def test_crosscheck_command_compares_a_corpus_and_writes_its_report(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pipeline.cli import main

    data = tmp_path / "data"
    folder = data / "mixed"
    folder.mkdir(parents=True)
    for name in ("edge_cases.musicxml", "two_tunes.abc", "truncated.mid"):
        shutil.copy(TEST_DATA / name, folder / name)
    shutil.copy(m21_path("bach/bwv66.6.mxl"), folder / "bwv66.6.mxl")
    shutil.copy(m21_path("bach/bwv277.krn"), folder / "bwv277.krn")
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    (corpora / "mixed.yaml").write_text(
        "name: mixed\ndescription: test files\nsource: {kind: directory, path: mixed, include: ['*']}\n"
        "genre: other\nlicence: test\nredistributable: false\npriority: 1\n"
    )
    report_path = tmp_path / "crosscheck.json"
    args = ["data", "crosscheck", "--corpora", str(corpora), "--corpus", "mixed",
            "--data-root", str(data), "--cache", str(tmp_path / "cache"), "--scheduler", "inline",
            "-o", str(report_path)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    row = report["by_corpus"]["mixed"]
    # 1 + 2 tunes + 1 + 1 + the unreadable MIDI file (both readers refuse it)
    assert row["items"] == 6 and row["both_failed"] == 1, report["not_identical"]
    assert row["identical"] == 5, report["not_identical"]
    assert [r["id"] for r in report["not_identical"]] == ["mixed/truncated.mid"]
    assert "mixed" in result.output and "identical" in result.output
    # a second run reads both readings from the cache
    again = CliRunner().invoke(main, [*args, "--json"])
    assert json.loads(again.stdout)["parsed"] == {"fast": 0, "reference": 0}


def test_a_difference_music21s_known_misreadings_explain_is_a_reference_error(
    tokenizer: Tokenizer,
) -> None:
    reference = _reference()
    ours = reference.replace(notes=reference.notes[:-1])  # stands for the correct reading
    quirked = reference.with_counts({"m21_quirk:chord-tie-lent": 1})
    calls: list[int] = []

    def quirks_reading() -> list[Score | ItemFailure]:
        calls.append(1)
        return [quirked]

    (result,) = compare_items([ours], [reference], tokenizer, None, quirks_reading)
    assert result.verdict == "reference_error" and calls == [1]
    assert result.cause.startswith("music21 misreads it (chord-tie-lent); notes:")
    # a quirks reading that is still not music21's explains nothing
    unexplained = ours.with_counts({"m21_quirk:chord-tie-lent": 1})
    (still,) = compare_items([ours], [reference], tokenizer, None, lambda: [unexplained])
    assert still.verdict == "different"
    # identical items never pay for a second reading
    compare_items([reference], [reference], tokenizer, None, quirks_reading)
    assert calls == [1]


def test_tunes_that_reuse_an_x_number_are_each_compared(tokenizer: Tokenizer) -> None:
    a, _, c = (s for s in read_items(TEST_DATA / "book_with_bad_tune.abc", reader="reference"))
    assert isinstance(a, Score) and isinstance(c, Score)
    first = a.replace(meta=ScoreMeta("x", collection_item="1"))
    second = c.replace(meta=ScoreMeta("x", collection_item="1"))
    verdicts = compare_items([first, second], [first, first], tokenizer)
    assert [(v.item, v.verdict) for v in verdicts] == [("1", "identical"), ("1.2", "different")]
