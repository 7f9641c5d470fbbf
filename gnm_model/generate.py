"""Sampling: grammar-constrained, with a KV cache, temperature / top-k / top-p.

At every step the tokenizer's grammar gives the ids allowed next (bars open with a supported
meter, positions stay inside the bar and increase, pitches descend within a position, durations
are vocabulary tokens); every other logit is masked, so every sample decodes. After `bars` bars
the `Bar` token is masked and `EOS` takes its probability, so the piece ends where the model
would open another bar rather than piling notes into the last one (before that, `EOS` is masked:
a sample has exactly `bars` bars); past `max_tokens` only `EOS` is kept as soon as the grammar allows it. When a sequence reaches the model's context, it is re-windowed to
its prefix (`Composer`, `Tempo`, `BOS`) plus its most recent bars, and the cache is rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gnm_model.transformer import Cache, GnMTransformer
from pipeline.errors import GnmError
from pipeline.tokenizer.grammar import Grammar
from pipeline.tokenizer.vocab import Vocab

PREFIX = 3


@dataclass(frozen=True)
class SampleConfig:
    """What to sample and how."""

    bars: int = 16
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    top_p: float = 1.0  # 1: no nucleus cut
    max_tokens: int = 8192
    use_cache: bool = True

    def __post_init__(self) -> None:
        if self.bars < 1 or self.max_tokens < 8:
            raise ValueError("bars must be >= 1 and max_tokens >= 8")
        if self.temperature <= 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError("temperature > 0, 0 < top_p <= 1 and top_k >= 0 are required")


def _filter(logits: torch.Tensor, cfg: SampleConfig) -> torch.Tensor:
    logits = logits / cfg.temperature
    if cfg.top_k:
        kth = torch.topk(logits, min(cfg.top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if cfg.top_p < 1:
        ordered, order = torch.sort(logits, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        cut = torch.cumsum(probs, dim=-1) - probs > cfg.top_p  # keep the first token always
        logits = logits.masked_fill(torch.zeros_like(cut).scatter(0, order, cut), float("-inf"))
    return logits


class Sampler:
    """Samples token sequences from a model under the vocabulary's grammar."""

    def __init__(
        self, model: GnMTransformer, vocab: Vocab, device: torch.device | None = None
    ) -> None:
        self.model = model.eval()
        self.vocab = vocab
        self.grammar = Grammar(vocab)
        self.device = device or next(model.parameters()).device
        self.bar = vocab.index["Bar"]
        self.eos = vocab.index["EOS"]

    def composer_row(self, composer: str | None) -> int:
        """The composer embedding row; GnmError naming the known composers otherwise."""
        if composer is not None and composer not in self.vocab.config.composers:
            raise GnmError(
                f"unknown composer {composer!r} (this model knows: "
                f"{', '.join(self.vocab.config.composers)})"
            )
        return self.vocab.composer_id(composer) - self.vocab.composer_base

    def _allowed_mask(
        self, state: object, bars: int, length: int, cfg: SampleConfig
    ) -> torch.Tensor:
        mask = torch.zeros(len(self.vocab), dtype=torch.bool)
        for lo, hi in self.grammar.allowed_ranges(state):  # type: ignore[arg-type]
            mask[lo:hi] = True
        if bars >= cfg.bars:
            mask[self.bar] = False
        elif length < cfg.max_tokens:
            mask[self.eos] = False  # exactly `bars` bars, unless the token budget runs out
        if length >= cfg.max_tokens and mask[self.eos]:
            mask[:] = False
            mask[self.eos] = True
        if not mask.any():  # only a Bar was allowed and it is masked: end here
            mask[self.eos] = True
        return mask

    def _window(self, ids: list[int]) -> list[int]:
        """Prefix + the most recent whole bars, at most half the context."""
        budget = self.model.cfg.context // 2
        starts = [i for i, t in enumerate(ids) if t == self.bar and i >= PREFIX]
        for s in starts:
            if len(ids) - s + PREFIX <= budget:
                return ids[:PREFIX] + ids[s:]
        return ids[:PREFIX] + ids[-(budget - PREFIX) :]

    @torch.no_grad()
    def sample(
        self,
        composer: str | None,
        cfg: SampleConfig,
        generator: torch.Generator,
        prompt: list[int] | None = None,
    ) -> list[int]:
        """One sequence: the prompt (its composer replaced) continued until EOS."""
        row = torch.tensor([self.composer_row(composer)], device=self.device)
        ids = list(prompt) if prompt else []
        head = self.vocab.composer_id(composer)
        ids = [head, *ids[1:]] if ids else [head]
        state = self.grammar.walk(ids)
        bars = sum(1 for t in ids if t == self.bar)
        context = self.model.cfg.context
        window = self._window(ids) if len(ids) > context else list(ids)
        cache: Cache | None = None
        pending = window  # tokens not yet run through the model
        while not self.grammar.is_complete(state):
            if cfg.use_cache:
                if cache is not None and cache[0][0].size(2) + len(pending) > context:
                    window = self._window(window)
                    cache, pending = None, window
                x = torch.tensor([pending], device=self.device)
                logits, cache = self.model(x, row, cache)
            else:
                if len(window) > context:
                    window = self._window(window)
                logits, _ = self.model(torch.tensor([window], device=self.device), row)
            scores = logits[0, -1].float().cpu().clone()  # edited below: never the model's
            if bars >= cfg.bars:  # the piece ends where the model would open another bar
                scores[self.eos] = torch.logaddexp(scores[self.eos], scores[self.bar])
            mask = self._allowed_mask(state, bars, len(ids), cfg)
            scores = scores.masked_fill(~mask, float("-inf"))
            probs = torch.softmax(_filter(scores, cfg), dim=-1)
            token = int(torch.multinomial(probs, 1, generator=generator))
            state = self.grammar.step(state, token)
            bars += token == self.bar
            ids.append(token)
            window.append(token)
            pending = [token]
        return ids
