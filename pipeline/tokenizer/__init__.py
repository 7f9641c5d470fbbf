"""Extended REMI: vocabulary, grammar, encoder and decoder (DESIGN.md section 4).

tok = Tokenizer()                      # default vocabulary, 12 ticks per quarter
ids = tok.encode(score, composer="Bach")
back = tok.decode(ids)                 # a Score; tok.decode(ids, strict=False) never raises
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from pipeline.score import Score
from pipeline.tokenizer.decode import Decoding, decode_ids
from pipeline.tokenizer.encode import Encoding, encode_score
from pipeline.tokenizer.grammar import Grammar, GrammarError, State
from pipeline.tokenizer.vocab import Vocab, VocabConfig, default_vocab


class Tokenizer:
    """An Extended REMI tokenizer bound to one vocabulary (and its grammar)."""

    def __init__(self, vocab: Vocab | None = None) -> None:
        self.vocab = vocab or default_vocab()
        self.grammar = Grammar(self.vocab)

    def encode(self, score: Score, composer: str | None = None) -> list[int]:
        """Token ids of a quantised, meter-normalised score."""
        return encode_score(score, self.vocab, composer).ids

    def encode_with_report(self, score: Score, composer: str | None = None) -> Encoding:
        """Token ids plus the counts of clipped durations and merged unisons."""
        return encode_score(score, self.vocab, composer)

    def decode(self, ids: Sequence[int], *, strict: bool = True) -> Score:
        """The score a token sequence describes (TokenizeError on invalid input when strict)."""
        return decode_ids(ids, self.grammar, strict=strict).score

    def decode_full(
        self, ids: Sequence[int], *, strict: bool = True, score_id: str = "decoded"
    ) -> Decoding:
        """Decoded score, composer name and the list of problems found (non-strict)."""
        return decode_ids(ids, self.grammar, strict=strict, score_id=score_id)

    def to_strings(self, ids: Sequence[int]) -> list[str]:
        """Token strings of ids."""
        return [self.vocab.tokens[i] for i in ids]

    def to_ids(self, tokens: Sequence[str]) -> list[int]:
        """Ids of token strings (TokenizeError for an unknown string)."""
        return [self.vocab.id(t) for t in tokens]


@lru_cache(maxsize=1)
def _default() -> Tokenizer:
    return Tokenizer()


def encode(score: Score, composer: str | None = None) -> list[int]:
    """Encode with the default vocabulary."""
    return _default().encode(score, composer)


def decode(ids: Sequence[int]) -> Score:
    """Decode with the default vocabulary."""
    return _default().decode(ids)


__all__ = [
    "Decoding",
    "Encoding",
    "Grammar",
    "GrammarError",
    "State",
    "Tokenizer",
    "Vocab",
    "VocabConfig",
    "decode",
    "default_vocab",
    "encode",
]
