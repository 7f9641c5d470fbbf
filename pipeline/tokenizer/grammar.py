"""The Extended REMI grammar as a state machine over token ids.

    Composer_<c> Tempo_<t> BOS ( Bar TS_<n/d> ( Pos_<k> ( Pitch_<p> Dur_<d> )+ )* )* EOS

Constraints beyond the shape: positions strictly increase inside a bar and stay below the bar's
number of positions; within a position pitches do not increase, and two notes of the same pitch
at one position have strictly increasing durations (so a note is never written twice). The
decoder validates with it and the model's constrained sampler asks it for the allowed next ids,
as half-open id ranges (cheap to turn into a logit mask).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import NamedTuple

from pipeline.errors import TokenizeError
from pipeline.tokenizer.vocab import Vocab


class Phase(IntEnum):
    """What the grammar expects next."""

    COMPOSER = 0
    TEMPO = 1
    BOS = 2
    BODY = 3  # after BOS: Bar or EOS
    TS = 4  # after Bar
    BAR = 5  # inside a bar after TS or after a Dur: Pos, Pitch (after a Dur), Bar, EOS
    PITCH = 6  # after Pos
    DUR = 7  # after Pitch
    END = 8  # after EOS


class Kind(IntEnum):
    """Token families."""

    PAD = 0
    BOS = 1
    EOS = 2
    BAR = 3
    TS = 4
    POS = 5
    PITCH = 6
    DUR = 7
    TEMPO = 8
    COMPOSER = 9


class State(NamedTuple):
    """Grammar state; `pitch` is 128 before the first note of a position, `npos` the bar's positions."""

    phase: Phase = Phase.COMPOSER
    npos: int = 0
    pos: int = -1
    pitch: int = 128
    dur: int = 0
    min_dur: int = 1


class GrammarError(TokenizeError):
    """A token is not allowed where it stands."""


_START = State()
_AFTER_COMPOSER = State(Phase.TEMPO)
_AFTER_TEMPO = State(Phase.BOS)
_AFTER_BOS = State(Phase.BODY)
_AFTER_BAR = State(Phase.TS)
_AFTER_EOS = State(Phase.END)


class Grammar:
    """Valid-next-token logic for one vocabulary."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        kinds: list[Kind] = []
        values: list[int] = []
        for token in vocab.tokens:
            kind, value = _classify(token, vocab)
            kinds.append(kind)
            values.append(value)
        self.kinds: tuple[Kind, ...] = tuple(kinds)
        self.values: tuple[int, ...] = tuple(values)
        self.ts_positions = tuple(vocab.positions(m) for m in vocab.meters)
        self.pad, self.bos, self.eos, self.bar = (
            vocab.index[t] for t in ("PAD", "BOS", "EOS", "Bar")
        )
        self.max_duration = vocab.max_duration

    def start(self) -> State:
        """The state before the first token."""
        return _START

    def step(self, state: State, token: int) -> State:
        """The state after `token`; GrammarError (with the expected tokens) when it is not allowed."""
        if not 0 <= token < len(self.kinds):
            raise GrammarError(f"id {token} is outside the vocabulary (size {len(self.kinds)})")
        kind = self.kinds[token]
        value = self.values[token]
        phase = state[0]
        # Ordered by frequency: Dur and Pitch make up most of a sequence. States are built with the
        # constructor rather than _replace, which is several times slower.
        if phase is Phase.DUR:
            if kind is Kind.DUR and value >= state[5]:
                return State(Phase.BAR, state[1], state[2], state[3], value, 1)
        elif phase is Phase.BAR:
            if kind is Kind.PITCH and state[2] >= 0:
                if value < state[3]:
                    return State(Phase.DUR, state[1], state[2], value, 0, 1)
                if value == state[3] and state[4] < self.max_duration:
                    return State(Phase.DUR, state[1], state[2], value, state[4], state[4] + 1)
            elif kind is Kind.POS and state[2] < value < state[1]:
                return State(Phase.PITCH, state[1], value)
            elif kind is Kind.BAR:
                return _AFTER_BAR
            elif kind is Kind.EOS:
                return _AFTER_EOS
        elif phase is Phase.PITCH:
            if kind is Kind.PITCH:
                return State(Phase.DUR, state[1], state[2], value, 0, 1)
        elif phase is Phase.TS:
            if kind is Kind.TS:
                return State(Phase.BAR, self.ts_positions[value])
        elif phase is Phase.BODY:
            if kind is Kind.BAR:
                return _AFTER_BAR
            if kind is Kind.EOS:
                return _AFTER_EOS
        elif phase is Phase.COMPOSER:
            if kind is Kind.COMPOSER:
                return _AFTER_COMPOSER
        elif phase is Phase.TEMPO:
            if kind is Kind.TEMPO:
                return _AFTER_TEMPO
        elif phase is Phase.BOS and kind is Kind.BOS:
            return _AFTER_BOS
        expected = ", ".join(self.describe(state))
        raise GrammarError(f"{self.vocab.tokens[token]} is not allowed here (expected {expected})")

    def walk(self, ids: Iterable[int], state: State | None = None) -> State:
        """The state after a whole prefix (GrammarError at the first invalid token)."""
        state = state or _START
        for position, token in enumerate(ids):
            try:
                state = self.step(state, token)
            except GrammarError as exc:
                raise GrammarError(f"token {position}: {exc}") from None
        return state

    def allowed_ranges(self, state: State) -> list[tuple[int, int]]:
        """Half-open id ranges of every token allowed after `state` (empty after EOS)."""
        v = self.vocab
        phase = state.phase
        if phase is Phase.COMPOSER:
            return [(v.composer_base, len(v))]
        if phase is Phase.TEMPO:
            return [(v.tempo_base, v.tempo_base + len(v.config.tempo_bins))]
        if phase is Phase.BOS:
            return [(self.bos, self.bos + 1)]
        if phase is Phase.TS:
            return [(v.ts_base, v.ts_base + len(v.meters))]
        if phase is Phase.PITCH:
            return [(v.pitch_base, v.pitch_base + v.config.pitch_max - v.config.pitch_min + 1)]
        if phase is Phase.DUR:
            return [(v.dur_base + state.min_dur - 1, v.dur_base + v.max_duration)]
        if phase is Phase.END:
            return []
        ranges = [(self.eos, self.eos + 1), (self.bar, self.bar + 1)]
        if phase is Phase.BAR:
            if state.pos + 1 < state.npos:
                ranges.append((v.pos_base + state.pos + 1, v.pos_base + state.npos))
            if state.pos >= 0:
                top = state.pitch if state.dur >= v.max_duration else state.pitch + 1
                top = min(top, v.config.pitch_max + 1)
                if top > v.config.pitch_min:
                    ranges.append((v.pitch_base, v.pitch_base + top - v.config.pitch_min))
        return sorted(ranges)

    def allowed(self, state: State) -> set[int]:
        """Every token id allowed after `state`."""
        return {i for lo, hi in self.allowed_ranges(state) for i in range(lo, hi)}

    def next_tokens(self, prefix: Sequence[int]) -> set[int]:
        """Every token id that may follow `prefix` (GrammarError when the prefix is invalid)."""
        return self.allowed(self.walk(prefix))

    def is_complete(self, state: State) -> bool:
        """True once EOS has been read."""
        return state.phase is Phase.END

    def validate(self, ids: Sequence[int]) -> list[str]:
        """Every grammar problem of a sequence (skipping invalid tokens); empty when valid."""
        problems = []
        state = _START
        for position, token in enumerate(ids):
            try:
                state = self.step(state, token)
            except GrammarError as exc:
                problems.append(f"token {position}: {exc}")
        if state.phase is not Phase.END:
            problems.append("sequence does not end with EOS")
        return problems

    def describe(self, state: State) -> list[str]:
        """Short names of the allowed token families (for error messages)."""
        out = []
        for lo, hi in self.allowed_ranges(state):
            first, last = self.vocab.tokens[lo], self.vocab.tokens[hi - 1]
            out.append(first if lo == hi - 1 else f"{first}..{last}")
        return out or ["nothing after EOS"]


def _classify(token: str, vocab: Vocab) -> tuple[Kind, int]:
    if token in ("PAD", "BOS", "EOS"):
        return Kind[token], 0
    if token == "Bar":
        return Kind.BAR, 0
    family, _, rest = token.partition("_")
    if family == "TS":
        return Kind.TS, vocab.config.meters.index(rest)
    if family == "Composer":
        return Kind.COMPOSER, vocab.index[token] - vocab.composer_base
    if family == "Tempo":
        return Kind.TEMPO, vocab.config.tempo_bins.index(int(rest))
    return {"Pos": Kind.POS, "Pitch": Kind.PITCH, "Dur": Kind.DUR}[family], int(rest)
