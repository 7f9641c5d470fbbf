from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import TokenizeError
from pipeline.score import Meter
from pipeline.tokenizer import Vocab, VocabConfig
from pipeline.tokenizer.vocab import validate_vocab_json
from tests.helpers import TEST_DATA


def test_default_ids_are_stable() -> None:
    # The committed file pins every id: a change to the layout must be a new vocabulary version.
    golden = json.loads((TEST_DATA / "vocab_default_v1.json").read_text())
    assert Vocab(VocabConfig()).to_json() == golden
    assert Vocab.load(TEST_DATA / "vocab_default_v1.json").tokens == tuple(golden["tokens"])


def test_layout_matches_the_design() -> None:
    v = Vocab(VocabConfig())
    assert v.tokens[:4] == ("PAD", "BOS", "EOS", "Bar")
    assert [t for t in v.tokens if t.startswith("TS_")] == [
        "TS_2/4",
        "TS_3/4",
        "TS_4/4",
        "TS_3/8",
        "TS_6/8",
    ]
    assert (
        v.max_positions == 48 and v.positions(Meter(3, 8)) == 18 and v.positions(Meter(6, 8)) == 36
    )
    assert v.tokens[v.pitch_base] == "Pitch_0" and v.tokens[v.dur_base] == "Dur_1"
    assert v.max_duration == 96
    assert v.tokens[-5:] == (
        "Composer_None",
        "Composer_Bach",
        "Composer_Beethoven",
        "Composer_Mozart",
        "Composer_Chopin",
    )


def test_adding_a_composer_appends_one_id() -> None:
    base = Vocab(VocabConfig())
    more = Vocab(VocabConfig(composers=(*base.config.composers, "Haydn")))
    assert more.tokens[:-1] == base.tokens and more.tokens[-1] == "Composer_Haydn"
    assert more.hash != base.hash


def test_resolution_is_a_vocabulary_parameter() -> None:
    v24 = Vocab(VocabConfig(resolution=24))
    assert v24.max_positions == 96 and v24.max_duration == 192
    assert v24.hash != Vocab(VocabConfig()).hash
    with pytest.raises(ValueError, match="even"):
        VocabConfig(resolution=7)


def test_tempo_bins_snap_in_log_space() -> None:
    v = Vocab(VocabConfig())
    assert v.tokens[v.tempo_id(70)] == "Tempo_66"
    assert v.tokens[v.tempo_id(150)] == "Tempo_160"
    assert v.tokens[v.tempo_id(5)] == "Tempo_40" and v.tokens[v.tempo_id(900)] == "Tempo_192"


def test_unknown_composer_and_token_are_clear_errors() -> None:
    v = Vocab(VocabConfig())
    with pytest.raises(TokenizeError, match="unknown composer 'Haydn'"):
        v.composer_id("Haydn")
    with pytest.raises(TokenizeError, match="unknown token 'Pitch_200'"):
        v.id("Pitch_200")


def test_tampered_files_are_refused(tmp_path: Path) -> None:
    good = Vocab(VocabConfig()).to_json()
    cases = {
        "hash": {**good, "hash": "0" * 64},
        "tokens": {**good, "tokens": [*good["tokens"][:-1], "Composer_Nobody"]},
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(data))
        with pytest.raises(TokenizeError, match="hash|token list"):
            Vocab.load(path)


def test_schema_names_the_bad_field() -> None:
    bad = Vocab(VocabConfig()).to_json()
    bad["config"] = {**bad["config"], "resolution": 7}
    with pytest.raises(TokenizeError, match="config/resolution"):
        validate_vocab_json(bad)
    with pytest.raises(TokenizeError, match="cannot read"):
        Vocab.load(TEST_DATA / "missing.json")
