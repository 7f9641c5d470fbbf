from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.config_yaml import MAX_BYTES, MAX_DEPTH, ConfigTooLarge, load_config, parse_config
from tests.helpers import REPO


def test_the_shipped_files_read_as_with_safe_load() -> None:
    for path in [REPO / "params.yaml", *sorted((REPO / "corpora").glob("*.yaml"))]:
        assert load_config(path) == yaml.safe_load(path.read_text()), path


def test_aliases_are_refused_with_their_place() -> None:
    with pytest.raises(yaml.YAMLError, match="aliases") as info:
        parse_config("a: &x [1, 2]\nb: *x\n", "decl.yaml")
    assert 'in "decl.yaml", line 2, column 4' in str(info.value)
    assert parse_config("a: &x [1, 2]\n") == {"a": [1, 2]}  # an anchor alone repeats nothing


def test_nesting_is_bounded_before_python_recursion_is() -> None:
    assert parse_config("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)) is not None
    for depth in (MAX_DEPTH + 1, 100_000):  # the second raised RecursionError in safe_load
        with pytest.raises(yaml.YAMLError, match=f"nested more than {MAX_DEPTH} levels"):
            parse_config("[" * depth + "]" * depth)


def test_a_large_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:  # sparse: 1 GiB that costs no disk
        fh.write(b"a: 1\n")
        fh.truncate(1 << 30)
    with pytest.raises(ConfigTooLarge, match="too large"):
        load_config(path)
    path.write_text("a: " + "x" * MAX_BYTES)
    with pytest.raises(ConfigTooLarge):
        load_config(path)
