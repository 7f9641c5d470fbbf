"""The `gnm` command line: `app` puts every command together (`pipeline.cli.main` is its group).

One module per concern: `tokens` (single score and token files), `data` (declarations and the
whole-set stages), `stages` (a command per per-item stage, generated from `STAGES`, and shard),
`inspect` (stats and inspect), `crosscheck`, with `common` (options, progress) and `limits`
(a command's isolated child). Nothing is imported here, so that a library module may use
`pipeline.cli.common` without loading every command.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """`main`, the `gnm` group, loaded on first use."""
    if name == "main":
        from pipeline.cli.app import main

        return main
    raise AttributeError(f"module 'pipeline.cli' has no attribute {name!r}")
