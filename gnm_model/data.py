"""Training data from Parquet token shards: bar-aligned windows, balanced composers, transposition.

`TokenSplit.load` reads one split of a shard folder, shard by shard, into one flat uint16 array
(2 bytes a token: the paper's 64.8M-token pre-training set is 130 MB) with per-piece offsets, so
that a window can start at any bar. A batch is a pure function of (seed, rank, step): resuming at
step s gives exactly the batches an uninterrupted run would have seen, with no sampler state to
save, and DataLoader workers can each make every W-th batch.

A window starts at a random bar of a piece (chosen with probability proportional to its length,
so every token is equally likely; or, for fine-tuning, a composer chosen uniformly first), takes
as many tokens as fit, and gets the piece's prefix (`Composer`, `Tempo`, `BOS`) put back in front.
Pre-training replaces the composer with `Composer_None`. A window shorter than the context is
packed with windows of further pieces (of the same composer when conditioned). Transposition shifts every pitch by k
semitones, k uniform in [-transpose, transpose] among the shifts that keep the window's pitches
inside [pitch_low, pitch_high].
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from pipeline.errors import GnmError
from pipeline.io.shards import ShardSet
from pipeline.tokenizer.vocab import Vocab

PREFIX = 3  # Composer, Tempo, BOS
IGNORE = -100  # target id that the loss skips (padding)


@dataclass(frozen=True)
class DataConfig:
    """How batches are drawn."""

    context: int
    batch_size: int
    seed: int = 0
    transpose: int = 5  # semitones each way; 0 disables
    pitch_low: int = 21
    pitch_high: int = 108
    balanced: bool = False  # composer-balanced sampling (fine-tuning)
    pack: bool = True  # fill a short window with further windows (same composer), EOS-separated
    conditioned: bool = True  # keep the composer; False (pre-training): Composer_None
    rank: int = 0  # DDP rank: ranks draw different batches


@dataclass
class TokenSplit:
    """One split of a shard folder in memory: tokens, piece and bar offsets, composer rows."""

    vocab: Vocab
    tokens: np.ndarray  # (N,) uint16, pieces back to back
    starts: np.ndarray  # (P + 1,) int64: piece i is tokens[starts[i]:starts[i + 1]]
    bar_starts: list[np.ndarray]  # per piece: offsets of its Bar tokens within the piece
    composer_rows: np.ndarray  # (P,) composer embedding row (0: None)
    ids: list[str]

    @classmethod
    def load(
        cls, shards: ShardSet, split: str, composers: Sequence[str] | None = None
    ) -> TokenSplit:
        """Read `split` (only pieces whose composer token is in `composers`, when given)."""
        vocab = shards.vocab
        wanted = None
        if composers is not None:
            unknown = [c for c in composers if c not in vocab.config.composers]
            if unknown:
                raise GnmError(
                    f"unknown composer {', '.join(unknown)} (the shards' vocabulary knows: "
                    f"{', '.join(vocab.config.composers)})"
                )
            wanted = {f"Composer_{c}" for c in composers}
        chunks: list[np.ndarray] = []
        lengths: list[int] = []
        bars: list[np.ndarray] = []
        rows: list[int] = []
        ids: list[str] = []
        for path in shards.files(split):
            table = pq.read_table(path, columns=["id", "composer_token", "tokens", "bar_offsets"])
            for i in range(table.num_rows):
                token_name = table.column("composer_token")[i].as_py()
                if wanted is not None and token_name not in wanted:
                    continue
                piece = np.asarray(table.column("tokens")[i].values, dtype=np.uint16)
                chunks.append(piece)
                lengths.append(piece.size)
                bars.append(np.asarray(table.column("bar_offsets")[i].values, dtype=np.int64))
                rows.append(vocab.index[token_name] - vocab.composer_base)
                ids.append(table.column("id")[i].as_py())
        if not chunks:
            which = f" for {', '.join(composers)}" if composers else ""
            raise GnmError(f"{shards.folder}: no pieces in split {split!r}{which}")
        starts = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        return cls(vocab, np.concatenate(chunks), starts, bars, np.asarray(rows), ids)

    @property
    def n_tokens(self) -> int:
        """Tokens in the split."""
        return int(self.tokens.size)

    def piece(self, i: int) -> np.ndarray:
        """The tokens of piece `i`."""
        return self.tokens[self.starts[i] : self.starts[i + 1]]


class Windows:
    """Draws training windows from a TokenSplit."""

    def __init__(self, data: TokenSplit, cfg: DataConfig) -> None:
        self.data = data
        self.cfg = cfg
        vocab = data.vocab
        lengths = np.diff(data.starts).astype(np.float64)
        self.weights = lengths / lengths.sum()
        self.by_composer = {
            int(row): np.flatnonzero(data.composer_rows == row)
            for row in np.unique(data.composer_rows)
        }
        self.pitch_lo = vocab.pitch_base
        self.pitch_hi = vocab.pitch_base + vocab.config.pitch_max - vocab.config.pitch_min
        self.pitch_min = vocab.config.pitch_min
        self.pad = vocab.index["PAD"]
        self.none = vocab.composer_base

    def _choose_piece(self, rng: np.random.Generator, row: int | None = None) -> int:
        if row is not None:  # another piece of the same composer (packing)
            group = self.by_composer[row]
        elif not self.cfg.balanced:
            return int(rng.choice(self.weights.size, p=self.weights))
        else:
            group = self.by_composer[int(rng.choice(list(self.by_composer)))]
        w = self.weights[group]
        return int(group[rng.choice(group.size, p=w / w.sum())])

    def packed(self, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """A window, followed (when it is short and packing is on) by windows of further pieces
        of the same composer until context + 1 tokens: short pieces (folk tunes) waste no compute
        on padding. Pieces stay separated by their EOS and the next piece's prefix."""
        seq, row = self.window(rng)
        parts = [seq]
        length = seq.size
        while self.cfg.pack and length < self.cfg.context + 1:
            more, _ = self.window(rng, row if self.cfg.conditioned else None)
            parts.append(more)
            length += more.size
        return np.concatenate(parts)[: self.cfg.context + 1], row

    def window(self, rng: np.random.Generator, row_of: int | None = None) -> tuple[np.ndarray, int]:
        """One window of up to context + 1 tokens (input and shifted target) and its composer row."""
        i = self._choose_piece(rng, row_of)
        piece = self.data.piece(i)
        bars = self.data.bar_starts[i]
        room = self.cfg.context + 1
        start = int(bars[rng.integers(bars.size)]) if bars.size else PREFIX
        body = piece[start : start + room - PREFIX]
        out = np.concatenate([piece[:PREFIX], body]).astype(np.int64)
        row = int(self.data.composer_rows[i])
        if not self.cfg.conditioned:
            out[0], row = self.none, 0
        if self.cfg.transpose:
            out = self._transpose(out, rng)
        return out, row

    def _transpose(self, seq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        is_pitch = (seq >= self.pitch_lo) & (seq <= self.pitch_hi)
        if not is_pitch.any():
            return seq
        pitches = seq[is_pitch] - self.pitch_lo + self.pitch_min
        low = max(-self.cfg.transpose, self.cfg.pitch_low - int(pitches.min()))
        high = min(self.cfg.transpose, self.cfg.pitch_high - int(pitches.max()))
        if low > high:  # already outside the range: leave it
            return seq
        shift = int(rng.integers(low, high + 1))
        out = seq.copy()
        out[is_pitch] += shift
        return out

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inputs (B, T), targets (B, T) with padding ignored, composer rows (B,) for `step`."""
        rng = np.random.default_rng([self.cfg.seed, self.cfg.rank, step])
        t = self.cfg.context
        x = np.full((self.cfg.batch_size, t), self.pad, dtype=np.int64)
        y = np.full((self.cfg.batch_size, t), IGNORE, dtype=np.int64)
        rows = np.zeros(self.cfg.batch_size, dtype=np.int64)
        for b in range(self.cfg.batch_size):
            seq, rows[b] = self.packed(rng)
            n = seq.size - 1
            x[b, :n] = seq[:-1]
            y[b, :n] = seq[1:]
        return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(rows)


class WindowBatches(IterableDataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """Batches for steps start, start + 1, ... stop - 1; each DataLoader worker makes every W-th."""

    def __init__(self, windows: Windows, start: int, stop: int) -> None:
        self.windows = windows
        self.start = start
        self.stop = stop

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for step in range(self.start + worker, self.stop, workers):
            yield self.windows.batch(step)


def evaluation_batches(
    data: TokenSplit, context: int, batch_size: int, max_batches: int, conditioned: bool
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Fixed validation batches: consecutive bar-aligned windows of each piece, in order."""
    vocab = data.vocab
    pad = vocab.index["PAD"]
    windows: list[tuple[np.ndarray, int]] = []
    for i in range(len(data.ids)):
        piece = data.piece(i).astype(np.int64)
        row = int(data.composer_rows[i]) if conditioned else 0
        prefix = piece[:PREFIX].copy()
        if not conditioned:
            prefix[0] = vocab.composer_base
        bars = data.bar_starts[i]
        at = 0
        while at < bars.size and len(windows) < max_batches * batch_size:
            start = int(bars[at])
            body = piece[start : start + context + 1 - PREFIX]
            windows.append((np.concatenate([prefix, body]), row))
            end = start + body.size
            at = int(np.searchsorted(bars, end, side="left"))
            if body.size < context + 1 - PREFIX:
                break
        if len(windows) >= max_batches * batch_size:
            break
    batches = []
    for k in range(0, len(windows), batch_size):
        group = windows[k : k + batch_size]
        x = np.full((len(group), context), pad, dtype=np.int64)
        y = np.full((len(group), context), IGNORE, dtype=np.int64)
        for b, (seq, _) in enumerate(group):
            x[b, : seq.size - 1] = seq[:-1]
            y[b, : seq.size - 1] = seq[1:]
        rows = torch.tensor([r for _, r in group], dtype=torch.long)
        batches.append((torch.from_numpy(x), torch.from_numpy(y), rows))
    return batches
