"""Composer style adapters: a small residual network conditioned on a composer embedding.

adapter(h, c) = h + W2 · GELU(W1 · [h ; c])   with c the composer's embedding at every position.

W2 starts at zero, so a freshly added adapter is the identity: fine-tuning starts exactly from
the pre-trained model's predictions.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class StyleAdapter(nn.Module):
    """concat(hidden, composer embedding) -> Linear -> GELU -> Linear -> residual add."""

    def __init__(self, d_model: int, composer_dim: int, hidden: int) -> None:
        super().__init__()
        self.up = nn.Linear(d_model + composer_dim, hidden)
        self.down = nn.Linear(hidden, d_model)
        nn.init.zeros_(self.down.weight)
        nn.init.zeros_(self.down.bias)

    def forward(self, h: torch.Tensor, composer: torch.Tensor) -> torch.Tensor:
        """`h` (B, T, C) and `composer` (B, E) -> (B, T, C)."""
        c = composer[:, None, :].expand(-1, h.size(1), -1)  # (B, T, E)
        return h + self.down(F.gelu(self.up(torch.cat([h, c], dim=-1))))
