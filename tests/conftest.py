"""Shared fixtures: music21's bundled corpus, the shared real data sets, tiny hand-made files."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from pipeline.readers import read_scores
from pipeline.score import Score
from pipeline.tokenizer import Tokenizer, Vocab, VocabConfig

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"


def shared_data_root() -> Path:
    """Where the shared real data sets live: $GNM_DATA_ROOT, else ../shared/data beside the repo."""
    return Path(os.environ.get("GNM_DATA_ROOT", REPO.parent / "shared" / "data"))


def m21_path(name: str) -> Path:
    """Path of a file in music21's bundled corpus, e.g. `bach/bwv66.6.mxl`."""
    from music21 import corpus

    return Path(corpus.getWork(name))


def m21_corpus_files(*composers: str) -> list[Path]:
    """Every score file (not Roman-numeral analyses) of the given composer folders of music21."""
    from music21 import corpus

    wanted = tuple(f"/corpus/{c}/" for c in composers)
    return sorted(
        Path(p)
        for p in corpus.getPaths()
        if any(w in str(p) for w in wanted)
        and Path(p).suffix in (".mxl", ".xml", ".krn", ".musicxml", ".abc")
    )


def read_one(path: Path, item: str | None = None) -> Score:
    """The score of `path` (the tune with X:`item` in a collection)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = read_scores(path)
    if item is None:
        return scores[0]
    return next(s for s in scores if s.meta.collection_item == item)


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


TINY_PROFILE = "{m21-bach: 10, m21-beethoven: 1, m21-mozart: 1, m21-chopin: null}"


def make_build_root(root: Path, profile: str = TINY_PROFILE) -> Path:
    """A repository-shaped folder (dvc.yaml, params.yaml, corpora/) whose `default` profile is tiny."""
    import shutil

    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(REPO / "corpora", root / "corpora")
    params = (REPO / "params.yaml").read_text()
    marker = "  default:\n"
    start = params.index(marker, params.index("profiles:"))
    end = params.index("  quick:\n", start)
    params = params[:start] + f"  default:\n    corpora: {profile}\n" + params[end:]
    (root / "params.yaml").write_text(params)
    return root


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built tiny default profile (stages run directly): the root holding data/ and reports/."""
    from pipeline.build import build

    root = make_build_root(tmp_path_factory.mktemp("build"))
    build(root, "default", use_dvc=False, echo=lambda line: None)
    return root


def quick_profile() -> str:
    """The shipped quick profile's corpora, as a YAML flow mapping."""
    import json

    from pipeline.params import load_params

    return json.dumps(dict(load_params(REPO / "params.yaml").profile("quick").corpora))


@pytest.fixture(scope="session")
def quick_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shards of the quick profile (built once per session, stages run directly)."""
    from pipeline.build import build

    root = make_build_root(tmp_path_factory.mktemp("quick"), quick_profile())
    build(root, "default", use_dvc=False, echo=lambda line: None)
    return root / "data/default/shards"
