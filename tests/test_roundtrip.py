"""The core check: decode(encode(s)) == s on real scores, note for note and bar for bar.

`s` is the quantised, meter-normalised score; the only declared differences are the two that
encoding counts: durations longer than the longest Dur token are clipped, and a note sounded by
two parts at once (same onset, pitch and duration) is one event.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import pytest

from pipeline.errors import MeterError
from pipeline.readers import read_scores
from pipeline.score import Score
from pipeline.tokenizer import Tokenizer
from pipeline.tokenizer.chain import tokenize_score
from tests.helpers import m21_corpus_files, shared_data_root

M21_FILES = m21_corpus_files("bach", "beethoven", "mozart")
ASAP_FILES = sorted((shared_data_root() / "asap").rglob("*.mxl"))


def expected_keys(prepared: Score, tokenizer: Tokenizer) -> list[tuple[Fraction, int, Fraction]]:
    longest = Fraction(tokenizer.vocab.max_duration, tokenizer.vocab.resolution)
    return sorted({(o, p, min(d, longest)) for o, p, d in prepared.note_keys()})


# Pieces whose meters have no exact rule: the pipeline quarantines them with this reason.
KNOWN_METER_QUARANTINES = {
    "Scriabin/Sonatas/5.mxl": "meter:5/8",
}


def assert_round_trip(path: Path, tokenizers: list[Tokenizer]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = read_scores(path)
    quarantine = next(
        (r for k, r in KNOWN_METER_QUARANTINES.items() if path.as_posix().endswith(k)), None
    )
    for score in scores:
        if quarantine is not None:
            with pytest.raises(MeterError) as info:
                tokenize_score(score, tokenizers[0])
            assert info.value.reason == quarantine
            continue
        for tok in tokenizers:
            result = tokenize_score(score, tok, "Bach")
            decoded = tok.decode(result.ids)
            assert decoded.meters() == result.score.meters(), (score.meta.id, tok.vocab.resolution)
            assert decoded.note_keys() == expected_keys(result.score, tok), (
                score.meta.id,
                tok.vocab.resolution,
            )
            # Nothing vanishes silently: every merged or clipped note is counted.
            merged = len(result.score.notes) - len(decoded.notes)
            assert merged == result.report.get("unison_merged", 0)


def test_corpus_lists_are_complete() -> None:
    assert len(M21_FILES) >= 450  # 413 Bach, 26 Beethoven, 16 Mozart files in music21 10
    names = {p.name for p in M21_FILES}
    assert {"bwv66.6.mxl", "opus133.mxl"} <= names


# The fast tier round-trips one file in 15 (31 files: Bach, Beethoven and Mozart); the default run
# every file.
@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=() if i % 15 == 0 else pytest.mark.corpus)
        for i, p in enumerate(M21_FILES)
    ],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_music21_round_trip(path: Path, tokenizer: Tokenizer, tokenizer24: Tokenizer) -> None:
    assert_round_trip(path, [tokenizer, tokenizer24])


@pytest.mark.slow
@pytest.mark.parametrize("path", ASAP_FILES, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_asap_round_trip(path: Path, tokenizer: Tokenizer, tokenizer24: Tokenizer) -> None:
    assert_round_trip(path, [tokenizer, tokenizer24])


@pytest.mark.slow
def test_asap_is_present(data_root: Path) -> None:
    assert len(ASAP_FILES) == 232
