from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gnm_model.config import preset
from gnm_model.data import TokenSplit
from gnm_model.generate import SampleConfig, Sampler
from gnm_model.memorisation import TrainingIndex, _hashes
from gnm_model.transformer import GnMTransformer
from pipeline.io.shards import open_shards
from pipeline.tokenizer.vocab import Vocab, VocabConfig


@pytest.fixture(scope="module")
def index(quick_shards: Path) -> TrainingIndex:
    return TrainingIndex(TokenSplit.load(open_shards(quick_shards), "train"))


def test_rolling_hashes_equal_the_sequential_definition() -> None:
    tokens = np.array([5, 1, 2, 3, 5, 1, 2, 9, 1, 2, 3])
    hashes = _hashes(tokens, 3)

    def direct(window: np.ndarray) -> int:
        value = 0
        for t in window:
            value = (value * 1_000_003 + int(t) + 1) % 2**64
        return value

    assert [int(h) for h in hashes] == [direct(tokens[i : i + 3]) for i in range(len(tokens) - 2)]


def test_a_copied_passage_is_found_and_flagged(index: TrainingIndex) -> None:
    split = index.split
    piece = next(i for i in range(len(split.ids)) if split.bar_starts[i].size > 12)
    tokens = split.piece(piece).tolist()
    bars = split.bar_starts[piece]
    copied = tokens[:3] + tokens[int(bars[2]) : int(bars[10])] + [split.vocab.index["EOS"]]
    result = index.check(copied)
    assert result.longest_bar_run >= 8 and result.flagged
    assert result.longest_ngram >= len(copied) - 4  # the whole body minus EOS
    assert result.bar_run_source is not None


def test_an_untrained_models_sample_shares_little(index: TrainingIndex) -> None:
    torch.manual_seed(0)
    vocab = index.split.vocab
    sampler = Sampler(GnMTransformer(preset("tiny").for_vocab(vocab)), vocab)
    ids = sampler.sample("Bach", SampleConfig(bars=8), torch.Generator().manual_seed(0))
    result = index.check(ids)
    assert result.longest_bar_run <= 1 and not result.flagged
    assert result.longest_ngram < 20


def _longest_common_run(a: list[int], b: list[int]) -> int:
    best, row = 0, [0] * (len(b) + 1)
    for x in a:
        new = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                new[j + 1] = row[j] + 1
                best = max(best, new[j + 1])
        row = new
    return best


@pytest.mark.parametrize("seed", range(12))
def test_the_longest_shared_ngram_equals_a_brute_force_search(seed: int) -> None:
    """Spliced samples over three short bodies: the doubling-then-bisecting search against a
    quadratic longest-common-substring, with the separators between pieces respected."""
    rng = np.random.default_rng(seed)
    vocab = Vocab(VocabConfig())
    bar = vocab.index["Bar"]
    bodies = [
        [bar, *rng.integers(10, 18, size=int(rng.integers(5, 40))).tolist()] for _ in range(3)
    ]
    pieces = [[0, 0, 0, *b] for b in bodies]  # PREFIX tokens, then the body
    starts = np.concatenate([[0], np.cumsum([len(p) for p in pieces])])
    split = TokenSplit(vocab, np.concatenate(pieces).astype(np.uint16), starts,
                       [np.zeros(0, np.int64)] * 3, np.zeros(3, np.int64), ["a", "b", "c"])  # fmt: skip
    index = TrainingIndex(split)
    sample_body: list[int] = []
    for _ in range(3):  # a chunk of a training body, or random tokens
        source = bodies[int(rng.integers(3))]
        a = int(rng.integers(len(source)))
        sample_body += source[a : a + int(rng.integers(1, 12))] if rng.random() < 0.7 else rng.integers(10, 18, 4).tolist()  # fmt: skip
    expected = max(_longest_common_run(sample_body, b) for b in bodies)
    assert index.longest_ngram([0, 0, 0, *sample_body]) == expected
