"""Shared fixtures (tokenizers, the shared real data sets, tiny and quick builds) and the hook that
keeps built profiles out of the fast tier. Helpers that test modules import (paths, readers,
build folders) live in `tests/helpers.py`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.tokenizer import Tokenizer, Vocab, VocabConfig
from tests.helpers import BUILD_FIXTURES, make_build_root, quick_profile, shared_data_root

# One OpenMP thread per test process (and the `gnm` processes tests start), set before anything
# imports torch: `pytest -n 2` already runs one worker per core, and torch's threads on top of
# that spin against each other (a sampling test took 12 s of CPU instead of 1 s on a busy box).
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `corpus` every test that uses a built profile, directly or through another fixture:
    the build takes seconds to minutes, and under xdist each worker builds its own."""
    for item in items:
        if BUILD_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.corpus)


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


@pytest.fixture(scope="session")
def tiny_release(quick_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny pre-training run ("pre"), an adapter run over it ("ft") and their export ("model")."""
    from gnm_model import checkpoint as ckpt
    from gnm_model.config import TrainConfig, preset
    from gnm_model.release import export
    from gnm_model.train import train
    from pipeline.io.shards import open_shards
    from pipeline.tokenizer.vocab import DEFAULT_COMPOSERS

    root = tmp_path_factory.mktemp("release")
    shards = open_shards(quick_shards)
    cfg = TrainConfig(steps=6, batch_size=4, lr=3e-3, warmup=2, eval_every=3, checkpoint_every=3)
    train(root / "pre", preset("tiny"), shards, cfg, "pretrain", echo=lambda line: None)
    init = ckpt.load(ckpt.latest(root / "pre"))
    train(root / "ft", init.config, shards, cfg, "adapters", list(DEFAULT_COMPOSERS), init=init,
          echo=lambda line: None)  # fmt: skip
    export([("pretrain", root / "pre"), ("adapters", root / "ft")], root / "model", "tiny", "cmd")
    return {"pre": root / "pre", "ft": root / "ft", "model": root / "model"}
