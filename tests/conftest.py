"""Shared fixtures: tokenizers, the shared real data sets, tiny and quick builds. Helpers that test
modules import (paths, readers, build folders) live in `tests/helpers.py`."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.tokenizer import Tokenizer, Vocab, VocabConfig
from tests.helpers import make_build_root, quick_profile, shared_data_root


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer()


@pytest.fixture(scope="session")
def tokenizer24() -> Tokenizer:
    return Tokenizer(Vocab(VocabConfig(resolution=24)))


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root} (set GNM_DATA_ROOT)")
    return root


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built tiny default profile (stages run directly): the root holding data/ and reports/."""
    from pipeline.build import build

    root = make_build_root(tmp_path_factory.mktemp("build"))
    build(root, "default", use_dvc=False, echo=lambda line: None)
    return root


@pytest.fixture(scope="session")
def quick_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shards of the quick profile (built once per session, stages run directly)."""
    from pipeline.build import build

    root = make_build_root(tmp_path_factory.mktemp("quick"), quick_profile())
    build(root, "default", use_dvc=False, echo=lambda line: None)
    return root / "data/default/shards"
