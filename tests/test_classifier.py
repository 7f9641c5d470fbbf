from __future__ import annotations

import numpy as np
import pytest

from gnm_model.classifier import (
    ClassifierConfig,
    ComposerClassifier,
    Featuriser,
    Pieces,
    cross_validate,
    fold_of,
)
from pipeline.tokenizer import Vocab, VocabConfig

VOCAB = Vocab(VocabConfig())


def piece(rng: np.random.Generator, composer: str, low: int, bars: int = 20) -> np.ndarray:
    """A token sequence whose pitches come from [low, low + 5): the only thing telling composers apart."""
    v = VOCAB
    ids = [v.composer_id(composer), v.tempo_base, v.index["BOS"]]
    for _ in range(bars):
        ids += [v.index["Bar"], v.ts_base + 2]
        for pos in range(0, 48, 12):
            ids += [
                v.pos_base + pos,
                v.pitch_base + int(rng.integers(low, low + 5)),
                v.dur_base + 11,
            ]
    return np.asarray([*ids, v.index["EOS"]])


def test_windows_drop_the_composer_token_and_follow_bars() -> None:
    feats = Featuriser(VOCAB, ClassifierConfig(window_bars=8))
    tokens = piece(np.random.default_rng(0), "Bach", 60)
    windows = feats.windows(tokens)
    assert len(windows) == 4  # bars 0-7, 4-11, 8-15, 12-19
    assert all(w[0] == VOCAB.index["Bar"] and VOCAB.composer_id("Bach") not in w for w in windows)
    f = feats.features(windows[0])
    assert abs(np.linalg.norm(f) - 1) < 1e-5


@pytest.mark.corpus
def test_separable_composers_are_told_apart_under_group_folds() -> None:
    rng = np.random.default_rng(1)
    composers = ["Bach", "Mozart"]
    pieces = Pieces()
    for i in range(40):
        label = i % 2
        pieces.ids.append(f"p{i}")
        pieces.groups.append(f"g{i // 4}")  # groups of 4 pieces, both composers inside
        pieces.labels.append(label)
        pieces.tokens.append(piece(rng, composers[label], 60 if label == 0 else 72))
    result = cross_validate(
        pieces, VOCAB, composers, ClassifierConfig(window_bars=8, hash_bits=12, folds=4)
    )
    assert result["pieces"] == 40 and result["accuracy"] == 1.0
    assert result["confusion"] == [[20, 0], [0, 20]]
    model = ComposerClassifier(VOCAB, composers, ClassifierConfig(window_bars=8, hash_bits=12)).fit(
        pieces.tokens, pieces.labels
    )
    probs = model.predict_proba([piece(rng, "Bach", 72)])  # a "Bach" label on Mozart's material
    assert probs[0].argmax() == 1  # the composer token is not used


def test_folds_depend_only_on_the_group() -> None:
    assert fold_of("m21-bach/bach/bwv66.6.mxl", 5) == fold_of("m21-bach/bach/bwv66.6.mxl", 5)
    assert {fold_of(f"g{i}", 5) for i in range(100)} == set(range(5))
