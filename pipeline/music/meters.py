"""The meters a normalised score may hold: every other meter maps onto these (`music.meter`)."""

from __future__ import annotations

SUPPORTED_METERS: tuple[str, ...] = ("2/4", "3/4", "4/4", "3/8", "6/8")
