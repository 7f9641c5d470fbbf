"""GnM data side: readers, canonical score, meter rules, quantisation and the Extended REMI tokenizer."""

from __future__ import annotations

__version__ = "0.1.0"
