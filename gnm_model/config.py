"""Model configuration: a frozen dataclass, and the presets as data.

Layer indices are 0-based: the paper preset's adapters sit on layers 1, 3, 5, 7 and 9 of 0-11.
`vocab_size` and `n_composers` come from the vocabulary (`ModelConfig.for_vocab`), so a vocabulary
with one more composer gives a model with one more composer-embedding row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import GnmError
from pipeline.tokenizer.vocab import Vocab


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the decoder-only Transformer and its style adapters."""

    n_layers: int
    d_model: int
    n_heads: int
    d_ff: int
    context: int  # tokens the model attends over (positions 0 .. context-1)
    adapter_layers: tuple[int, ...]
    adapter_hidden: int  # width of the adapter's inner Linear
    composer_dim: int  # size of a composer embedding
    dropout: float = 0.0
    vocab_size: int = 0  # set from the vocabulary
    n_composers: int = 0  # composers of the vocabulary, not counting None

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError("the head size must be even (sinusoidal positions pair dimensions)")
        if any(not 0 <= i < self.n_layers for i in self.adapter_layers):
            raise ValueError(f"adapter layers {self.adapter_layers} outside 0..{self.n_layers - 1}")
        if min(self.n_layers, self.d_model, self.d_ff, self.context) < 1:
            raise ValueError("n_layers, d_model, d_ff and context must be positive")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")
        object.__setattr__(self, "adapter_layers", tuple(sorted(set(self.adapter_layers))))

    @property
    def head_dim(self) -> int:
        """Channels per attention head."""
        return self.d_model // self.n_heads

    def for_vocab(self, vocab: Vocab) -> ModelConfig:
        """This shape sized for `vocab` (token count and composer list)."""
        return dataclasses.replace(
            self, vocab_size=len(vocab), n_composers=len(vocab.config.composers)
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (the checkpoint's `config`)."""
        data = dataclasses.asdict(self)
        data["adapter_layers"] = list(self.adapter_layers)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Inverse of `to_json`; unknown or missing fields are a GnmError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise GnmError(f"model config: unknown fields {', '.join(sorted(unknown))}")
        try:
            return cls(**{**data, "adapter_layers": tuple(data["adapter_layers"])})
        except (KeyError, TypeError, ValueError) as exc:
            raise GnmError(f"model config: {exc}") from None


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (per run; stored in the run folder and every checkpoint).

    Here, without torch, so that the CLI takes its option defaults from these fields.
    """

    steps: int = 1000
    batch_size: int = 8
    lr: float = 3e-4
    min_lr_ratio: float = 0.1
    warmup: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    accumulation: int = 1
    eval_every: int = 100
    eval_batches: int = 8
    checkpoint_every: int = 100
    log_every: int = 10
    seed: int = 0
    transpose: int = 5
    max_seconds: float = 0.0  # stop (with a checkpoint) after this long; 0: no limit
    workers: int = 0  # DataLoader worker processes
    compile: bool = False

    def __post_init__(self) -> None:
        if (
            min(
                self.steps,
                self.batch_size,
                self.accumulation,
                self.eval_every,
                self.checkpoint_every,
            )
            < 1
        ):
            raise ValueError(
                "steps, batch_size, accumulation, eval_every and checkpoint_every must be >= 1"
            )


PRESETS: Mapping[str, ModelConfig] = {
    # CPU tests: trains in seconds.
    "tiny": ModelConfig(
        n_layers=2, d_model=64, n_heads=4, d_ff=128, context=256,
        adapter_layers=(1,), adapter_hidden=64, composer_dim=32,
    ),
    # CPU demo: learns something in minutes.
    "small": ModelConfig(
        n_layers=4, d_model=192, n_heads=4, d_ff=768, context=512,
        adapter_layers=(1, 3), adapter_hidden=256, composer_dim=64,
    ),
    # The paper's model: about 46M parameters with the default vocabulary.
    "paper": ModelConfig(
        n_layers=12, d_model=512, n_heads=8, d_ff=2048, context=2400,
        adapter_layers=(1, 3, 5, 7, 9), adapter_hidden=1024, composer_dim=512, dropout=0.1,
    ),
}  # fmt: skip


def preset(name: str) -> ModelConfig:
    """A preset by name; GnmError listing the known ones otherwise."""
    if name not in PRESETS:
        raise GnmError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name]
