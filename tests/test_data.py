from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from gnm_model.data import DataConfig, TokenSplit, WindowBatches, Windows, evaluation_batches
from pipeline.errors import GnmError
from pipeline.io.shards import open_shards
from pipeline.tokenizer import Tokenizer
from pipeline.tokenizer.chain import tokenize_score
from tests.helpers import m21_path, read_one

CHORALES = ["bach/bwv66.6.mxl", "bach/bwv269.mxl", "bach/bwv277.krn"]


@pytest.fixture(scope="module")
def split(quick_shards: Path) -> TokenSplit:
    return TokenSplit.load(open_shards(quick_shards), "train")


def chorales_split(tokenizer: Tokenizer) -> TokenSplit:
    """A TokenSplit of three Bach chorales tokenized here, as the shards would hold them."""
    vocab = tokenizer.vocab
    pieces = [
        np.asarray(tokenize_score(read_one(m21_path(name)), tokenizer, "Bach").ids, np.uint16)
        for name in CHORALES
    ]
    starts = np.zeros(len(pieces) + 1, dtype=np.int64)
    np.cumsum([p.size for p in pieces], out=starts[1:])
    bars = [np.flatnonzero(p == vocab.index["Bar"]) for p in pieces]
    rows = np.full(len(pieces), vocab.composer_id("Bach") - vocab.composer_base)
    return TokenSplit(vocab, np.concatenate(pieces), starts, bars, rows, CHORALES)


def test_windows_of_three_chorales_start_at_a_bar_and_batches_repeat(tokenizer: Tokenizer) -> None:
    split = chorales_split(tokenizer)
    check_windows(split)
    windows = Windows(split, DataConfig(context=64, batch_size=3, seed=5))
    a, b = windows.batch(7), windows.batch(7)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_windows_start_at_a_bar_with_the_prefix_and_stay_in_range(split: TokenSplit) -> None:
    check_windows(split)


def check_windows(split: TokenSplit) -> None:
    """Windows open with the composer, tempo and BOS prefix, then a bar, and stay within
    A0-C8 after transposition."""
    vocab = split.vocab
    windows = Windows(split, DataConfig(context=128, batch_size=4, transpose=6, pack=False))
    rng = np.random.default_rng(0)
    bar = vocab.index["Bar"]
    for _ in range(200):
        seq, _ = windows.window(rng)
        assert seq.size <= 129
        assert vocab.tokens[seq[0]].startswith("Composer_") and vocab.tokens[seq[2]] == "BOS"
        assert seq[3] == bar or vocab.tokens[seq[3]] == "EOS"
        pitches = [
            int(vocab.tokens[t].split("_")[1]) for t in seq if vocab.tokens[t].startswith("Pitch_")
        ]
        assert all(21 <= p <= 108 for p in pitches)


def test_batches_are_a_function_of_the_step_and_workers_keep_the_order(split: TokenSplit) -> None:
    windows = Windows(split, DataConfig(context=64, batch_size=3, seed=5))
    a, b = windows.batch(7), windows.batch(7)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(windows.batch(8)[0], a[0])
    loader = torch.utils.data.DataLoader(
        WindowBatches(windows, 0, 6), batch_size=None, num_workers=2
    )
    for step, (x, _, _) in enumerate(loader):
        assert torch.equal(x, windows.batch(step)[0])


def test_targets_are_inputs_shifted_and_packing_fills_the_context(split: TokenSplit) -> None:
    x, y, _ = Windows(split, DataConfig(context=256, batch_size=8)).batch(0)
    assert torch.equal(x[:, 1:], y[:, :-1]) and bool((y != -100).all())
    x, y, _ = Windows(split, DataConfig(context=256, batch_size=8, pack=False)).batch(0)
    assert bool((y == -100).any())  # folk tunes are shorter than the context


def test_balanced_sampling_evens_out_composers_and_packs_one_composer(quick_shards: Path) -> None:
    shards = open_shards(quick_shards)
    data = TokenSplit.load(shards, "train", ["Bach", "Beethoven"])
    windows = Windows(data, DataConfig(context=512, batch_size=1, balanced=True, transpose=0))
    rows = Counter(int(windows.batch(step)[2][0]) for step in range(300))
    assert abs(rows[1] - rows[2]) < 60  # Bach (row 1) and Beethoven (row 2), not 141 pieces to 3
    composer_ids = {shards.vocab.composer_id("Bach"), shards.vocab.composer_id("Beethoven")}
    for step in range(20):
        x, _, row = windows.batch(step)
        heads = {int(t) for t in x[0] if int(t) in composer_ids}
        assert heads == {shards.vocab.composer_base + int(row[0])}
    with pytest.raises(GnmError, match="unknown composer Liszt"):
        TokenSplit.load(shards, "train", ["Liszt"])


def test_evaluation_batches_are_fixed_and_cover_pieces(quick_shards: Path) -> None:
    data = TokenSplit.load(open_shards(quick_shards), "valid")
    one = evaluation_batches(data, 128, 4, 3, conditioned=False)
    two = evaluation_batches(data, 128, 4, 3, conditioned=False)
    assert len(one) == 3 and all(torch.equal(a[0], b[0]) for a, b in zip(one, two, strict=True))
    assert all(int(r) == 0 for batch in one for r in batch[2])
