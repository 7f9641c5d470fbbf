"""The decoder-only Transformer, built bottom-up: attention -> MLP -> block (+ adapter) -> model.

Pre-LN blocks, `scaled_dot_product_attention`, sinusoidal absolute positions as in the paper
(no position parameters; a sequence longer than `context` is re-windowed by the generator), an
untied output head. The composer embedding table has one row for `Composer_None` (row 0) and one
per vocabulary composer, in vocabulary order: composer row = token id - `vocab.composer_base`.

A KV cache (`Cache`, one (k, v) pair per layer) makes generation linear in the number of new
tokens: the prompt is run once, then one token at a time.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from gnm_model.adapters import StyleAdapter
from gnm_model.config import ModelConfig

Cache = list[tuple[torch.Tensor, torch.Tensor]]


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """(length, d_model) table: sin on even channels, cos on odd, wavelengths up to 10000·2π."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)
    return table


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with an optional KV cache."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(
        self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """`x` (B, T, C), `past` keys/values (B, H, P, D) -> (B, T, C) and the new keys/values."""
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, c // self.n_heads).transpose(1, 2) for z in (q, k, v))
        if past is not None:  # (B, H, P + T, D)
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        p = k.size(2) - t
        drop = self.dropout if self.training else 0.0
        if p == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)
        else:  # new query i sees every cached key and new keys up to itself
            mask = torch.ones(t, p + t, dtype=torch.bool, device=x.device).tril(diagonal=p)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        y = y.transpose(1, 2).contiguous().view(b, t, c)  # (B, T, C)
        return self.out(y), (k, v)


class MLP(nn.Module):
    """Linear -> GELU -> Linear."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.d_ff)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(F.gelu(self.up(x))))


class Block(nn.Module):
    """Pre-LN block: x + attn(ln(x)), then x + mlp(ln(x)), then the style adapter if any."""

    def __init__(self, cfg: ModelConfig, with_adapter: bool) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        self.adapter = (
            StyleAdapter(cfg.d_model, cfg.composer_dim, cfg.adapter_hidden)
            if with_adapter
            else None
        )

    def forward(
        self,
        x: torch.Tensor,
        composer: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        a, kv = self.attn(self.ln1(x), past)
        x = x + self.drop(a)
        x = x + self.mlp(self.ln2(x))
        if self.adapter is not None:
            x = self.adapter(x, composer)
        return x, kv


class GnMTransformer(nn.Module):
    """Token + sinusoidal position embeddings -> blocks -> LayerNorm -> vocabulary logits."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.vocab_size < 1:
            raise ValueError("size the config for a vocabulary first (ModelConfig.for_vocab)")
        self.cfg = cfg
        self.tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.composers = nn.Embedding(cfg.n_composers + 1, cfg.composer_dim)  # row 0: None
        self.register_buffer(
            "positions", sinusoidal_positions(cfg.context, cfg.d_model), persistent=False
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            Block(cfg, i in cfg.adapter_layers) for i in range(cfg.n_layers)
        )
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)
        self.apply(self._init)
        for module in self.modules():  # the adapters' zero init must survive `_init`
            if isinstance(module, StyleAdapter):
                nn.init.zeros_(module.down.weight)
                nn.init.zeros_(module.down.bias)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def forward(
        self,
        idx: torch.Tensor,
        composer: torch.Tensor,
        cache: Cache | None = None,
    ) -> tuple[torch.Tensor, Cache]:
        """`idx` (B, T) token ids, `composer` (B,) rows -> logits (B, T, V) and the new cache.

        With a cache, `idx` continues the cached sequence (positions start after it).
        """
        start = cache[0][0].size(2) if cache else 0
        t = idx.size(1)
        if start + t > self.cfg.context:
            raise ValueError(
                f"sequence of {start + t} tokens exceeds the context of {self.cfg.context}"
            )
        positions: torch.Tensor = self.positions  # type: ignore[assignment]
        x = self.tokens(idx) + positions[start : start + t]  # (B, T, C)
        x = self.drop(x)
        c = self.composers(composer)  # (B, E)
        new_cache: Cache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, c, cache[i] if cache else None)
            new_cache.append(kv)
        return self.head(self.ln_f(x)), new_cache  # (B, T, V)

    def parameter_groups(self) -> dict[str, int]:
        """Parameter counts: backbone, adapters, embeddings (token, composer, output head), total."""
        counts = {"backbone": 0, "adapters": 0, "embeddings": 0}
        for name, p in self.named_parameters():
            if ".adapter." in name:
                counts["adapters"] += p.numel()
            elif name.startswith(("tokens.", "composers.", "head.")):
                counts["embeddings"] += p.numel()
            else:
                counts["backbone"] += p.numel()
        counts["total"] = sum(counts.values())
        return counts

    def backbone_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Everything but the adapters and the composer embeddings (frozen in adapter fine-tuning)."""
        return [
            (n, p)
            for n, p in self.named_parameters()
            if ".adapter." not in n and not n.startswith("composers.")
        ]
