"""Decoding Extended REMI token ids back into a canonical score.

Decoding is total on grammar-valid sequences. An invalid sequence raises TokenizeError naming
the first bad token (strict), or, with `strict=False`, its bad tokens are skipped, counted in the
score's report (`invalid_tokens`) and listed in `decode_errors`: it never crashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from pipeline.errors import TokenizeError
from pipeline.score import Bar, Note, Score, ScoreMeta, TempoChange
from pipeline.tokenizer.grammar import Grammar, GrammarError, Kind, Phase
from pipeline.tokenizer.vocab import NO_COMPOSER, Vocab


@dataclass(frozen=True)
class Decoding:
    """The decoded score, the composer token's name (None for `Composer_None`) and any problems."""

    score: Score
    composer: str | None
    errors: list[str] = field(default_factory=list)


def decode_ids(
    ids: Sequence[int], grammar: Grammar, *, strict: bool = True, score_id: str = "decoded"
) -> Decoding:
    """Rebuild the score that `ids` describe (see the module docstring for invalid input)."""
    vocab: Vocab = grammar.vocab
    res = vocab.resolution
    kinds, values = grammar.kinds, grammar.values
    errors: list[str] = []
    events: list[tuple[int, int, int]] = []  # (tick, pitch, duration ticks)
    bars: list[Bar] = []
    composer: str | None = None
    tempo: float | None = None
    state = grammar.start()
    step = grammar.step
    quarters: dict[int, Fraction] = {}  # tick -> Fraction, built once per distinct value

    def q(tick: int) -> Fraction:
        value = quarters.get(tick)
        if value is None:
            value = quarters[tick] = Fraction(tick, res)
        return value

    bar_tick = 0
    bar_ticks = 0
    pos_tick = 0
    pitch = 0
    for position, token in enumerate(map(int, ids)):
        try:
            state = step(state, token)
        except GrammarError as exc:
            message = f"token {position}: {exc}"
            if strict:
                raise TokenizeError(f"{score_id}: invalid token sequence: {message}") from None
            errors.append(message)
            continue
        kind = kinds[token]
        value = values[token]
        if kind is Kind.COMPOSER:
            name = vocab.tokens[token].partition("_")[2]
            composer = None if name == NO_COMPOSER else name
        elif kind is Kind.TEMPO:
            tempo = float(vocab.config.tempo_bins[value])
        elif kind is Kind.TS:
            meter = vocab.meters[value]
            bar_tick += bar_ticks
            bar_ticks = vocab.positions(meter)
            bars.append(Bar(Fraction(bar_tick, res), meter.length, meter))
        elif kind is Kind.POS:
            pos_tick = bar_tick + value
        elif kind is Kind.PITCH:
            pitch = value
        elif kind is Kind.DUR:
            events.append((pos_tick, pitch, value))
    if state.phase is not Phase.END:
        message = "sequence ends without EOS"
        if strict:
            raise TokenizeError(f"{score_id}: invalid token sequence: {message}")
        errors.append(message)
    report: dict[str, float] = {"invalid_tokens": len(errors)} if errors else {}
    # Sorting integer ticks is far cheaper than sorting Fractions; the score is valid by
    # construction (sorted notes, contiguous bars, onsets inside bars), so it is not re-validated.
    events.sort()
    notes = tuple(Note(q(tick), p, q(dur)) for tick, p, dur in events)
    score = Score(
        meta=ScoreMeta(score_id, composer=composer or ""),
        notes=notes,
        bars=tuple(bars),
        tempos=(TempoChange(Fraction(0), tempo),) if tempo is not None else (),
        report=report,
    )
    return Decoding(score, composer, errors)


class NoteOnsets:
    """Onset tick and pitch of every note of grammar-valid sequences, vectorised (no Score).

    What a similarity check over many token rows needs (the shard stage's leak check), at numpy
    speed: a bar starts where the previous bars' positions end (at its TS token), a note at its
    bar's start plus the last Pos value. Sequences are trusted to be grammar-valid (the shards'
    rows are encoder output); use `decode_ids` to check one.
    """

    def __init__(self, grammar: Grammar) -> None:
        self.kinds = np.asarray([int(k) for k in grammar.kinds], dtype=np.int8)
        self.values = np.asarray(grammar.values, dtype=np.int64)
        self.ts_positions = np.asarray(grammar.ts_positions, dtype=np.int64)

    def __call__(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(onset ticks, pitches) of the notes of `ids`, in sequence order."""
        ids = np.asarray(ids, dtype=np.int64)
        kinds, values = self.kinds[ids], self.values[ids]
        index = np.arange(ids.size)
        is_ts = kinds == Kind.TS
        length = np.where(is_ts, self.ts_positions[np.where(is_ts, values, 0)], 0)
        bar_start = np.cumsum(length) - length  # at each TS token: the ticks of earlier bars
        last_ts = np.maximum.accumulate(np.where(is_ts, index, 0))
        last_pos = np.maximum.accumulate(np.where(kinds == Kind.POS, index, 0))
        notes = np.flatnonzero(kinds == Kind.PITCH)
        return bar_start[last_ts[notes]] + values[last_pos[notes]], values[notes]
