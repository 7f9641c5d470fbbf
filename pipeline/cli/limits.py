"""The CLI's parsing under ingest's limits: the same isolated child, timeout and memory cap.

`gnm tokenize`, `detokenize`, `render`, `generate --prompt` and `data inspect -o` read files a
user hands them with the parsers that ingest runs in a forked child (`executor`): a one-line ABC
tune of a megabyte kept music21 busy for minutes, and an overfull bar recursed until Python gave
up. Here the work that can hang or blow up runs in that same child under `ingest.timeout_s` and
`ingest.memory_mb` (of `--params`, else the defaults, which equal the shipped params.yaml), or
`--timeout` / `--memory-mb`; whatever stops it becomes one GnmError line,
`<file>: <reason> (<detail>)`, where the reason is the one ingest would quarantine the file with.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from pipeline.errors import GnmError
from pipeline.executor import Limits, run_items
from pipeline.io.atomic import stale_temporaries
from pipeline.params import Params
from pipeline.stages.ingest_read import PRELOAD

T = TypeVar("T")
R = TypeVar("R")


def limit_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add `--timeout` and `--memory-mb` to a command (None: from --params or the defaults)."""
    func = click.option(
        "--memory-mb",
        type=click.IntRange(min=0),
        default=None,
        help="Memory the parsing may add to its process, in MB (0: no limit; "
        "default: params.yaml's ingest.memory_mb).",
    )(func)
    return click.option(
        "--timeout",
        "timeout_s",
        type=click.FloatRange(min=0),
        default=None,
        help="Seconds the parsing may run (0: no limit; default: params.yaml's ingest.timeout_s).",
    )(func)


def cli_limits(params: Params, timeout_s: float | None, memory_mb: int | None) -> Limits:
    """The options' limits, else those of the params' ingest section."""
    ingest = params.ingest
    return Limits(
        timeout_s=ingest.timeout_s if timeout_s is None else timeout_s,
        memory_mb=ingest.memory_mb if memory_mb is None else memory_mb,
    )


def run_limited(
    func: Callable[[T], R],
    item: T,
    limits: Limits,
    label: str | Path,
    writes: Sequence[Path] = (),
) -> R:
    """`func(item)` in ingest's isolated child under `limits`; its value, or a GnmError line.

    The message is `<label>: <reason> (<detail>)` (`timeout`, `memory_limit`, `crash`, or the
    exception's reason, such as `too_large` or `meter:7/4`). `func` may be a closure (the child is
    forked) but its value must pickle. `writes`: the files `func` writes with `write_score`,
    whose temporary files a child killed on the way leaves behind (removed here). Under
    `gnm --debug` the child prints the traceback too.
    """
    ctx = click.get_current_context(silent=True)
    work = _traced(func) if ctx is not None and ctx.find_root().params.get("debug") else func
    try:
        # The parsers are imported before the fork, as ingest's workers do, so that the memory
        # cap counts the same thing here (what one file adds) as in a build.
        outcome = run_items(work, [item], limits=limits, scheduler="inline", preload=PRELOAD)[0]
    finally:
        for path in writes:
            for stale in stale_temporaries(path.parent, path.name):
                stale.unlink(missing_ok=True)
    if outcome.ok:
        return cast(R, outcome.value)
    detail = outcome.detail.removeprefix(f"{label}: ")  # the readers name the file themselves
    raise GnmError(f"{label}: {outcome.reason} ({detail})")


def _traced(func: Callable[[T], R]) -> Callable[[T], R]:
    """`func`, printing the traceback of what it raises (the child's, for --debug)."""

    def run(item: T) -> R:
        try:
            return func(item)
        except Exception:
            traceback.print_exc()
            raise

    return run
