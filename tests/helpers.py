"""Helpers that test modules import: repository paths, music21's corpus, reading one score, and
repository-shaped build folders. Fixtures and hooks stay in `conftest.py`, which pytest loads by
itself; a test module imports from here, never from `conftest.py` (`test_test_suite.py` checks)."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

from pipeline.readers import read_scores
from pipeline.score import Score

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"

# The session fixtures of conftest.py that build a profile: a test using one (directly or through
# another fixture) is a `corpus` test, out of the fast tier.
BUILD_FIXTURES = frozenset({"tiny_build", "quick_shards"})
# The tiny `default` profile of `make_build_root`: a dozen short pieces, built in seconds.
TINY_PROFILE = "{m21-bach: 10, m21-beethoven: 1, m21-mozart: 1, m21-chopin: null}"


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


def make_build_root(root: Path, profile: str = TINY_PROFILE) -> Path:
    """A repository-shaped folder (dvc.yaml, params.yaml, corpora/) whose `default` profile is
    `profile`, a YAML flow mapping of corpus to item limit (`null`: every item)."""
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


def quick_profile() -> str:
    """The shipped quick profile's corpora, as a YAML flow mapping."""
    from pipeline.params import load_params

    return json.dumps(dict(load_params(REPO / "params.yaml").profile("quick").corpora))


def untrained_run(folder: Path) -> Path:
    """A run folder (`folder/run`) holding an untrained tiny model's checkpoint."""
    from gnm_model import checkpoint as ckpt
    from gnm_model.config import preset
    from gnm_model.transformer import GnMTransformer
    from pipeline.tokenizer import Vocab, VocabConfig

    vocab = Vocab(VocabConfig())
    run = folder / "run"
    run.mkdir()
    vocab.save(run / "vocab.json")
    model = GnMTransformer(preset("tiny").for_vocab(vocab))
    ckpt.save(run, 1, model, None, vocab, {"config": model.cfg.to_json()})
    return run
