"""Memorisation check: how much of a generated sample is copied from the training split.

Two measures per sample, both on tokens (so real and generated pieces compare exactly):

* the longest run of consecutive bars equal, token for token from `Bar` to the next `Bar`, to a
  run of consecutive bars of one training piece (empty bars do not count as shared);
* the longest token n-gram of the sample's body (after `Composer Tempo BOS`) that occurs anywhere
  in the training split's bodies, found by binary search over n with polynomial rolling hashes.

A sample is flagged as a near-copy when either reaches its threshold (`flag_bars`, `flag_tokens`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gnm_model.data import PREFIX, TokenSplit

_BASE = np.uint64(1_000_003)
_INVERSE = np.uint64(pow(1_000_003, -1, 2**64))


@dataclass(frozen=True)
class Memorisation:
    """What a sample shares with the training split."""

    longest_bar_run: int
    bar_run_source: str | None  # training piece id of the longest run
    longest_ngram: int
    flagged: bool


def _bars(ids: Sequence[int], bar: int) -> list[tuple[int, ...]]:
    starts = [i for i, t in enumerate(ids) if t == bar]
    ends = [*starts[1:], len(ids)]
    return [tuple(ids[a:b]) for a, b in zip(starts, ends, strict=True)]


def _hashes(tokens: np.ndarray, n: int) -> np.ndarray:
    """Polynomial hash (mod 2**64) of every n-gram of `tokens`, in O(len) without materialising
    the n-grams: with G the prefix sums of v_k / B**k, hash(i) = B**(i+n-1) (G[i+n] - G[i])
    (B is odd, so it is invertible mod 2**64)."""
    size = tokens.size
    if size < n or n < 1:
        return np.zeros(0, dtype=np.uint64)
    values = tokens.astype(np.uint64) + np.uint64(1)
    with np.errstate(over="ignore"):
        powers = np.concatenate(
            [[np.uint64(1)], np.cumprod(np.full(size - 1, _BASE, dtype=np.uint64), dtype=np.uint64)]
        )
        inverse = np.concatenate(
            [
                [np.uint64(1)],
                np.cumprod(np.full(size - 1, _INVERSE, dtype=np.uint64), dtype=np.uint64),
            ]
        )
        prefix = np.concatenate([[np.uint64(0)], np.cumsum(values * inverse, dtype=np.uint64)])
        return powers[n - 1 :] * (prefix[n:] - prefix[:-n])


class TrainingIndex:
    """Bars and n-grams of a training split, for repeated queries."""

    def __init__(self, split: TokenSplit) -> None:
        self.split = split
        vocab = split.vocab
        self.bar = vocab.index["Bar"]
        self.eos = vocab.index["EOS"]
        self.where: defaultdict[tuple[int, ...], list[tuple[int, int]]] = defaultdict(list)
        bodies = []
        for p in range(len(split.ids)):
            piece = split.piece(p).astype(np.int64)
            body = piece[PREFIX:]
            bodies.append(body)
            for j, bar_tokens in enumerate(_bars(body.tolist(), self.bar)):
                bar_tokens = tuple(t for t in bar_tokens if t != self.eos)
                if len(bar_tokens) > 2:  # Bar TS and at least one note
                    self.where[bar_tokens].append((p, j))
        # Pieces joined by a separator that no n-gram can contain.
        separator = np.array([-1], dtype=np.int64)
        parts = [x for body in bodies for x in (body, separator)]
        self.flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        self._sets: dict[int, np.ndarray] = {}

    def _ngram_set(self, n: int) -> np.ndarray:
        if n not in self._sets:
            hashes = _hashes(self.flat + 1, n)  # separator becomes 0, tokens 1..V
            # An n-gram spans a separator when the separator count grows across its window: O(len).
            separators = np.concatenate([[0], np.cumsum(self.flat < 0)])
            has_separator = separators[n:] - separators[:-n] > 0 if hashes.size else hashes > 0
            self._sets[n] = np.unique(hashes[~has_separator])
        return self._sets[n]

    def _shares(self, body: np.ndarray, n: int) -> bool:
        known = self._ngram_set(n)  # sorted and unique: a binary search per n-gram of the body
        hashes = _hashes(body + 1, n)
        if known.size == 0 or hashes.size == 0:
            return False
        at = np.minimum(np.searchsorted(known, hashes), known.size - 1)
        return bool((known[at] == hashes).any())

    def longest_ngram(self, ids: Sequence[int]) -> int:
        """Length of the longest n-gram of the body of `ids` found in the training bodies.

        A shared n-gram implies a shared (n - 1)-gram, so the answer is found by doubling n until
        nothing is shared, then bisecting: the n tried are mostly the same from one sample to the
        next, and each needs one index of the training split's n-grams (cached).
        """
        body = np.asarray([t for t in ids[PREFIX:] if t != self.eos], dtype=np.int64)
        low, high = 0, body.size
        probe = 1
        while probe <= high and self._shares(body, probe):
            low, probe = probe, 2 * probe
        high = min(high, probe - 1)
        while low < high:  # largest n with a shared n-gram
            mid = (low + high + 1) // 2
            if self._shares(body, mid):
                low = mid
            else:
                high = mid - 1
        return low

    def longest_bar_run(self, ids: Sequence[int]) -> tuple[int, str | None]:
        """Longest run of consecutive bars equal to consecutive bars of one training piece."""
        runs: dict[tuple[int, int], int] = {}
        best, source = 0, None
        for bar_tokens in _bars(list(ids[PREFIX:]), self.bar):
            bar_tokens = tuple(t for t in bar_tokens if t != self.eos)
            current: dict[tuple[int, int], int] = {}
            for p, j in self.where.get(bar_tokens, []) if len(bar_tokens) > 2 else []:
                length = runs.get((p, j - 1), 0) + 1
                current[(p, j)] = length
                if length > best:
                    best, source = length, self.split.ids[p]
            runs = current
        return best, source

    def check(self, ids: Sequence[int], flag_bars: int = 4, flag_tokens: int = 200) -> Memorisation:
        """Both measures for one sample, and the near-copy flag."""
        run, source = self.longest_bar_run(ids)
        ngram = self.longest_ngram(ids)
        return Memorisation(run, source, ngram, run >= flag_bars or ngram >= flag_tokens)
