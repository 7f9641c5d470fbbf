"""Composer classifier: which of the fine-tuning composers wrote a token sequence?

Input: a piece's tokens without its `Composer` token (the answer) and without `BOS`; cut into
windows of `window_bars` bars (stride `window_bars // 2`). Features: counts of token 1-, 2- and
3-grams hashed into `2**hash_bits` buckets, log(1 + count), L2-normalised. Model: multinomial
logistic regression (torch, AdamW with weight decay, class-balanced loss). A piece's prediction
is the mean of its windows' probabilities.

Evaluation is k-fold by dedupe group: fold = sha256(group) mod k, so a piece and its duplicates
are never on both sides; every piece is predicted once by a model that did not see its group.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.nn import functional as F

from pipeline.errors import GnmError
from pipeline.io.shards import ShardSet
from pipeline.tokenizer.vocab import Vocab


@dataclass(frozen=True)
class ClassifierConfig:
    """Features and training of the classifier."""

    window_bars: int = 16
    hash_bits: int = 16
    epochs: int = 60
    lr: float = 0.05
    weight_decay: float = 1e-4
    folds: int = 5
    seed: int = 0


@dataclass
class Pieces:
    """Labelled real pieces: token lists, composer index, dedupe group."""

    ids: list[str] = field(default_factory=list)
    tokens: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)


def load_pieces(shards: ShardSet, composers: Sequence[str]) -> Pieces:
    """Every piece of every split whose composer token is one of `composers`."""
    vocab = shards.vocab
    wanted = {f"Composer_{c}": i for i, c in enumerate(composers)}
    unknown = [c for c in composers if c not in vocab.config.composers]
    if unknown:
        raise GnmError(
            f"unknown composer {', '.join(unknown)} (known: {', '.join(vocab.config.composers)})"
        )
    out = Pieces()
    for path in shards.files():
        table = pq.read_table(path, columns=["id", "group", "composer_token", "tokens"]).to_pydict()
        for pid, group, token, tokens in zip(
            table["id"], table["group"], table["composer_token"], table["tokens"], strict=True
        ):
            if token in wanted:
                out.ids.append(pid)
                out.groups.append(group)
                out.labels.append(wanted[token])
                out.tokens.append(np.asarray(tokens, dtype=np.int64))
    return out


class Featuriser:
    """Hashed token n-gram features of bar windows."""

    def __init__(self, vocab: Vocab, cfg: ClassifierConfig) -> None:
        self.cfg = cfg
        self.size = 2**cfg.hash_bits
        self.bar = vocab.index["Bar"]
        self.drop = {vocab.index["BOS"], vocab.index["EOS"], vocab.index["PAD"]}
        self.composer_base = vocab.composer_base

    def windows(self, tokens: Sequence[int] | np.ndarray) -> list[np.ndarray]:
        """The piece's bar windows, composer and special tokens removed."""
        ids = np.asarray(
            [t for t in tokens if t < self.composer_base and t not in self.drop], dtype=np.int64
        )
        starts = np.flatnonzero(ids == self.bar)
        if starts.size == 0:
            return [ids] if ids.size else []
        bounds = [*starts.tolist(), ids.size]
        w = self.cfg.window_bars
        stride = max(1, w // 2)
        out = []
        for first in range(0, max(1, len(starts) - w + stride), stride):
            last = min(first + w, len(starts))
            out.append(ids[bounds[first] : bounds[last]])
            if last == len(starts):
                break
        return out

    def features(self, window: np.ndarray) -> np.ndarray:
        """log(1 + hashed 1/2/3-gram counts), L2-normalised."""
        vector = np.zeros(self.size, dtype=np.float32)
        v = window.astype(np.int64)
        keys = [
            v,
            v[:-1] * 1009 + v[1:] + 7_919,
            (v[:-2] * 1009 + v[1:-1]) * 1013 + v[2:] + 104_729,
        ]
        for k in keys:
            if k.size:
                np.add.at(vector, (k * 2_654_435_761) % self.size, 1.0)
        vector = np.log1p(vector)
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector


class ComposerClassifier:
    """Multinomial logistic regression over window features."""

    def __init__(
        self, vocab: Vocab, composers: Sequence[str], cfg: ClassifierConfig | None = None
    ) -> None:
        self.cfg = cfg or ClassifierConfig()
        self.composers = list(composers)
        self.featuriser = Featuriser(vocab, self.cfg)
        self.linear = torch.nn.Linear(self.featuriser.size, len(composers))

    def _matrix(self, pieces: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[int]]:
        rows, owner = [], []
        for p, tokens in enumerate(pieces):
            for window in self.featuriser.windows(tokens):
                rows.append(self.featuriser.features(window))
                owner.append(p)
        if not rows:
            return torch.zeros(0, self.featuriser.size), owner
        return torch.from_numpy(np.stack(rows)), owner

    def fit(self, pieces: Sequence[np.ndarray], labels: Sequence[int]) -> ComposerClassifier:
        """Train on the windows of labelled pieces (class-balanced loss)."""
        torch.manual_seed(self.cfg.seed)
        x, owner = self._matrix(pieces)
        y = torch.tensor([labels[p] for p in owner])
        counts = torch.bincount(y, minlength=len(self.composers)).float()
        weights = torch.where(
            counts > 0,
            counts.sum() / (len(self.composers) * counts.clamp(min=1)),
            torch.zeros_like(counts),
        )
        opt = torch.optim.AdamW(
            self.linear.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay
        )
        for _ in range(self.cfg.epochs):
            opt.zero_grad()
            F.cross_entropy(self.linear(x), y, weight=weights).backward()
            opt.step()
        return self

    @torch.no_grad()
    def predict_proba(self, pieces: Sequence[np.ndarray]) -> np.ndarray:
        """(pieces, composers) probabilities: the mean over each piece's windows."""
        x, owner = self._matrix(pieces)
        out = np.full((len(pieces), len(self.composers)), 1 / len(self.composers))
        if not owner:
            return out
        probs = torch.softmax(self.linear(x), dim=-1).numpy()
        owner_a = np.asarray(owner)
        for p in range(len(pieces)):
            mine = probs[owner_a == p]
            if mine.size:
                out[p] = mine.mean(axis=0)
        return out


def fold_of(group: str, folds: int) -> int:
    """The cross-validation fold of a dedupe group."""
    return int.from_bytes(hashlib.sha256(group.encode()).digest()[:8], "big") % folds


def cross_validate(
    pieces: Pieces,
    vocab: Vocab,
    composers: Sequence[str],
    cfg: ClassifierConfig | None = None,
    on_fold: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Group k-fold accuracy and confusion matrix (rows: true composer, columns: predicted)."""
    cfg = cfg or ClassifierConfig()
    folds = np.asarray([fold_of(g, cfg.folds) for g in pieces.groups])
    labels = np.asarray(pieces.labels)
    predicted = np.full(len(labels), -1)
    for k in range(cfg.folds):
        test = np.flatnonzero(folds == k)
        train = np.flatnonzero(folds != k)
        if test.size == 0 or train.size == 0:
            continue
        model = ComposerClassifier(vocab, composers, cfg).fit(
            [pieces.tokens[i] for i in train], labels[train].tolist()
        )
        predicted[test] = model.predict_proba([pieces.tokens[i] for i in test]).argmax(axis=1)
        if on_fold:
            on_fold(1)
    done = predicted >= 0
    confusion = np.zeros((len(composers), len(composers)), dtype=int)
    for t, p in zip(labels[done], predicted[done], strict=True):
        confusion[t, p] += 1
    per_class = {
        c: float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None
        for i, c in enumerate(composers)
    }
    return {
        "pieces": int(done.sum()),
        "accuracy": float((predicted[done] == labels[done]).mean()) if done.any() else float("nan"),
        "balanced_accuracy": float(np.mean([v for v in per_class.values() if v is not None])),
        "per_composer_recall": per_class,
        "support": {c: int((labels == i).sum()) for i, c in enumerate(composers)},
        "confusion": confusion.tolist(),
        "composers": list(composers),
        "folds": cfg.folds,
    }
