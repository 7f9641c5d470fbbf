"""params.yaml: every section parsed the same way, every key reaching its config (issue 15)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.config_section import key_fields, section_keys
from pipeline.music.meter import MeterConfig
from pipeline.params import (
    ATTRIBUTE_SECTIONS,
    PROFILES,
    SECTIONS,
    Params,
    ParamsError,
    Profile,
    load_params,
)

REPO = Path(__file__).resolve().parents[1]

# A valid value other than the default for every key of every section. A section or key missing
# here fails test_every_key_has_a_changed_value, so a new parameter is tested as it is added.
CHANGED: dict[str, dict[str, Any]] = {
    "ingest": {"data_root": "elsewhere", "timeout_s": 30, "memory_mb": 1024,
               "expand_repeats": True, "reader": "reference"},
    "dedupe": {"ngram": 4, "threshold": 0.8, "min_shingles": 20},
    "verify": {"min_bars": 4, "pitch_min": 24, "pitch_max": 96, "pitch_policy": "fold",
               "tempo_min": 30, "tempo_max": 300, "max_bars_lost": 3, "min_source_ratio": 0.9},
    "meter": {"supported": ["2/4", "3/4", "4/4", "3/8", "6/8", "5/8"],
              "rules": {"10/8": ["6/8", "2/4"]}, "incomplete_bars": "pad",
              "reinterpret_short_unruled": False},
    "quantize": {"resolution": 24},
    "vocab": {"resolution": 24, "meters": ["2/4", "3/4", "4/4"], "max_duration_quarters": 4,
              "tempo_bins": [60, 120], "composers": ["Bach", "Haydn"], "pitch_min": 21,
              "pitch_max": 108},
    "shard": {"target_tokens": 1000, "splits": {"train": 0.8, "valid": 0.1, "test": 0.1},
              "salt": "another-salt"},
    "quality": {"max_moved_share": 0.5, "max_empty_bar_share": 0.25, "max_silence_quarters": 16},
}  # fmt: skip
# What a changed key needs elsewhere to stay valid (the grid is shared by quantize and vocab).
COMPANIONS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("quantize", "resolution"): {"vocab": {"resolution": 24}},
    ("vocab", "resolution"): {"quantize": {"resolution": 24}},
}
KEYS = [(section, key) for section, cls in SECTIONS.items() for key in section_keys(cls)]


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_params_equal_the_dataclass_defaults() -> None:
    assert load_params(REPO / "params.yaml") == Params()
    assert load_params(None) == Params()


def test_shipped_params_write_every_key_of_every_section() -> None:
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    assert list(shipped) == [*SECTIONS, PROFILES]
    for section, cls in SECTIONS.items():
        assert set(shipped[section]) == set(section_keys(cls)), section


def test_params_has_a_config_per_section() -> None:
    assert set(ATTRIBUTE_SECTIONS) <= set(SECTIONS)
    attributes = [f.name for f in dataclasses.fields(Params)]
    assert attributes == [*ATTRIBUTE_SECTIONS, PROFILES, "other_sections"]
    for section, cls in SECTIONS.items():
        assert type(Params().section(section)) is cls
    with pytest.raises(ParamsError, match="unknown section 'nope'"):
        Params().section("nope")


def test_every_key_has_a_changed_value() -> None:
    missing = [f"{s}.{k}" for s, k in KEYS if k not in CHANGED.get(s, {})]
    assert missing == [], f"add a non-default value for {', '.join(missing)} to CHANGED"


@pytest.mark.parametrize(("section", "key"), KEYS, ids=[f"{s}.{k}" for s, k in KEYS])
def test_a_changed_key_reaches_its_config(tmp_path: Path, section: str, key: str) -> None:
    # meter.reinterpret_short_unruled: false was once read and dropped on the way
    data = {section: {key: CHANGED[section][key]}, **COMPANIONS.get((section, key), {})}
    config = load_params(_write(tmp_path, data)).section(section)
    default = SECTIONS[section]()
    changed = {
        f.name
        for f in dataclasses.fields(config)
        if getattr(config, f.name) != getattr(default, f.name)
    }
    assert key in changed and changed <= set(key_fields(SECTIONS[section], key))


def test_every_changed_key_arrives_in_one_file(tmp_path: Path) -> None:
    params = load_params(_write(tmp_path, CHANGED))
    for section, key in KEYS:
        assert getattr(params.section(section), key) != getattr(SECTIONS[section](), key)
    assert params.meter.rules == {"10/8": ("6/8", "2/4")} and params.meter.pairs == {}
    assert params.vocab.composers == ("Bach", "Haydn")  # lists arrive as the fields' tuples


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "meter: {rules: {5/4: [2/4, 2/4]}}",
            "section 'meter': meter rule 5/4 -> 2/4 \\+ 2/4 does not add up",
        ),
        ("meter: {incomplete_bars: drop}", "incomplete_bars must be one of 'merge'"),
        ("meter: {rules: {2/8: {pair: 3/4}}}", "meter pair rule 2/8 -> 3/4: 3/4 is not twice 2/8"),
        ("meter: {rules: {2/8: 2/4}}", "2/8: '2/4' is neither"),
        ("meter: {reinterpret_short_unruled: sometimes}", "must be true or false"),
        ("meter: {rule: {}}", "section 'meter': unknown parameters: rule \\(known: supported"),
        ("meter: {pairs: {2/8: 2/4}}", "unknown parameters: pairs"),  # written inside rules
        ("metre: {}", "unknown sections: metre \\(known: ingest, dedupe"),
        ("ingest: {timeout_s: soon}", "timeout_s must be a number, not 'soon'"),
        ("ingest: {expand_repeats: 1}", "expand_repeats must be true or false, not 1"),
        ("ingest: {reader: slow}", "reader must be one of 'fast', 'reference', not 'slow'"),
        ("ingest: {data_root: 3}", "data_root must be text, not 3"),
        ("verify: {min_bars: 2.5}", "min_bars must be an integer, not 2.5"),
        ("verify: {min_bars: true}", "min_bars must be an integer, not True"),
        ("vocab: {composers: Bach}", "composers must be a list, not 'Bach'"),
        ("vocab: {tempo_bins: [60, fast]}", "tempo_bins\\[1\\] must be an integer"),
        ("shard: {splits: [0.9, 0.1]}", "splits must be a mapping"),
        ("shard: {splits: {train: most}}", "splits.train must be a number"),
        ("profiles: {Mine: {corpora: all}}", "profile 'Mine': a profile name is a folder name"),
        ("profiles: {mine: {description: x}}", "profile 'mine': missing parameters: corpora"),
        ("profiles: {mine: {corpora: all, name: x}}", "unknown parameters: name \\(known: corpora"),
        ("profiles: {mine: {corpora: {a: 0}}}", "corpora must be `all`, a list"),
        ("profiles: {mine: {corpora: some}}", "corpora must be `all`, a list"),
        ("profiles: {mine: {corpora: all, description: 3}}", "description must be text"),
        ("quantize: {resolution: 24}", "must equal vocab.resolution"),
        ("vocab: {resolution: 9}", "section 'vocab'"),
        ("vocab: [1, 2]", "section 'vocab' must be a mapping"),
        ("- just a list", "mapping of sections"),
        ("meter: {rules: [", "cannot read parameters"),
        ("a: &x {timeout_s: 1}\ningest: *x\n", "aliases \\(\\*name\\) are not allowed"),
    ],
)
def test_bad_params_name_the_file_and_section(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError, match=message) as info:
        load_params(path)
    assert str(path) in str(info.value)


def test_a_declared_rule_extends_the_table(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(
        "meter: {rules: {10/8: [6/8, 2/4]}}\nquantize: {resolution: 24}\nvocab: {resolution: 24}\n"
    )
    params = load_params(path)
    assert params.meter.rules == {"10/8": ("6/8", "2/4")} and params.vocab.resolution == 24
    assert params.meter != MeterConfig()


def test_profiles_arrive_in_each_of_their_forms(tmp_path: Path) -> None:
    text = (
        "profiles:\n  a: {corpora: all, description: everything}\n  b: {corpora: [x, y]}\n"
        "  c: {corpora: {x: 3, y: null}}\n"
    )
    path = tmp_path / "params.yaml"
    path.write_text(text)
    profiles = load_params(path).profiles
    assert profiles == {
        "a": Profile("a", {}, everything=True),
        "b": Profile("b", {"x": None, "y": None}),
        "c": Profile("c", {"x": 3, "y": None}),
    }
    assert profiles["a"].description == "everything"
