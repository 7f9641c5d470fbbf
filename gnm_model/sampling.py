"""A model ready to sample, and one sample written to disk: shared by `gnm generate`, the quickstart
and the benches, so that sample i of a composer is the same piece wherever it is drawn.

Sample files are `<stem>.json` (ids, token strings, composer, seed, sampling settings, vocabulary
hash) and, unless only tokens are asked for, `<stem>.mid` and `<stem>.musicxml` decoded from them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from gnm_model.generate import SampleConfig, Sampler
from gnm_model.release import resolve_model, restart_adapters
from gnm_model.transformer import GnMTransformer
from pipeline.tokenizer import Tokenizer
from pipeline.tokenizer.vocab import Vocab


def load_model(
    path: Path, vocab: Vocab, device: str | None = None, *, pretrained: bool = False
) -> GnMTransformer:
    """The model of a run's latest checkpoint or of a released folder, in eval mode.

    `pretrained`: a released model's adapters as pre-training left them (`restart_adapters`).
    """
    loaded = resolve_model(path, vocab)
    if pretrained:
        loaded = restart_adapters(loaded)
    net = GnMTransformer(loaded.config.for_vocab(vocab))
    net.load_state_dict(dict(loaded.weights))
    return net.to(torch.device(device or "cpu")).eval()


@dataclass(frozen=True)
class Written:
    """What `write_sample` wrote: its files (the score files only with `scores=True`) and size."""

    json: str
    midi: str | None
    musicxml: str | None
    bars: int
    notes: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_sample(
    sampler: Sampler,
    composer: str | None,
    cfg: SampleConfig,
    seed: int,
    stem: Path,
    *,
    prompt: list[int] | None = None,
    scores: bool = True,
    extra: dict[str, Any] | None = None,
) -> Written:
    """Draw one sample with `torch.Generator().manual_seed(seed)` and write it under `stem`."""
    ids = sampler.sample(composer, cfg, torch.Generator().manual_seed(seed), prompt)
    tokenizer = Tokenizer(sampler.vocab)
    score = tokenizer.decode_full(ids, strict=True, score_id=stem.name).score
    body = {
        "composer": composer, "seed": seed, **(extra or {}), "bars": len(score.bars),
        "notes": len(score.notes), "ids": ids, "tokens": tokenizer.to_strings(ids),
        "vocab_hash": sampler.vocab.hash,
        "sampling": {"temperature": cfg.temperature, "top_k": cfg.top_k, "top_p": cfg.top_p},
    }  # fmt: skip
    stem.parent.mkdir(parents=True, exist_ok=True)
    tokens = with_extension(stem, ".json")
    tokens.write_text(json.dumps(body) + "\n")
    midi = musicxml = None
    if scores:
        from pipeline.writers import write_score

        midi = str(write_score(score, with_extension(stem, ".mid")))
        musicxml = str(write_score(score, with_extension(stem, ".musicxml")))
    return Written(str(tokens), midi, musicxml, len(score.bars), len(score.notes))


def with_extension(stem: Path, extension: str) -> Path:
    """`stem` + `extension`; unlike `with_suffix`, a dot in the name (`C.P.E.Bach-000`) stays."""
    return stem.with_name(stem.name + extension)
