"""GnM model side: composer-conditioned Transformer with style adapters (see DESIGN.md section 5)."""

from __future__ import annotations
