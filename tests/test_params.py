from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.music.meter import MeterConfig
from pipeline.params import Params, ParamsError, load_params
from tests.helpers import REPO


def test_shipped_params_equal_the_dataclass_defaults() -> None:
    assert load_params(REPO / "params.yaml") == Params()
    assert load_params(None) == Params()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "meter: {rules: {5/4: [2/4, 2/4]}}",
            "section 'meter': meter rule 5/4 -> 2/4 \\+ 2/4 does not add up",
        ),
        ("meter: {incomplete_bars: drop}", "incomplete_bars must be"),
        ("meter: {rules: {2/8: {pair: 3/4}}}", "meter pair rule 2/8 -> 3/4: 3/4 is not twice 2/8"),
        ("meter: {reinterpret_short_unruled: sometimes}", "must be true or false"),
        ("meter: {rule: {}}", "unknown meter parameters: rule"),
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


def test_every_meter_parameter_reaches_the_config(tmp_path: Path) -> None:
    # reinterpret_short_unruled: false was once read but not passed on
    path = tmp_path / "params.yaml"
    path.write_text("meter: {reinterpret_short_unruled: false, incomplete_bars: pad}\n")
    meter = load_params(path).meter
    assert not meter.reinterpret_short_unruled and meter.incomplete_bars == "pad"
    assert meter.rules == MeterConfig().rules and meter.pairs == MeterConfig().pairs
