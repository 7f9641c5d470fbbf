"""What the `gnm` command groups share: the --params and --profile options and the progress bar."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import click

from pipeline.errors import GnmError
from pipeline.progress_log import Heartbeat, ProgressLog

DEFAULT_PROFILE = "default"

T = TypeVar("T")

LOG_LINE_S = 30.0  # without a terminal, a progress line this often (seconds)
LOG_LINE_ENV = "GNM_LOG_LINE_S"  # overrides LOG_LINE_S (e.g. 5 for a short CI job's log)

PARAMS_OPTION = click.option(
    "--params",
    "params_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Parameter file (default: the built-in defaults, equal to the shipped params.yaml).",
)

# For the commands that read a build: its outputs live in data/<profile>/ and reports/<profile>/.
# The same profile name as the source readers' --profile (data_cli.SOURCE_PROFILE_OPTION): there
# it selects the corpora to read, here the folders that building those corpora wrote.
BUILT_PROFILE_OPTION = click.option(
    "--profile",
    default=DEFAULT_PROFILE,
    show_default=True,
    help="Read the build of this params.yaml profile: data/<profile>/ and reports/<profile>/, "
    "as `gnm data build --profile` wrote them.",
)


def log_line_seconds() -> float:
    """Seconds between progress lines without a terminal: $GNM_LOG_LINE_S, else LOG_LINE_S."""
    text = os.environ.get(LOG_LINE_ENV)
    if text is None:
        return LOG_LINE_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise GnmError(f"{LOG_LINE_ENV}={text!r}: give a positive number of seconds, e.g. 30")
    return seconds


@contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr and the callback that advances it.

    Without a terminal (a log file, CI) a plain line goes to stderr every `log_line_seconds()`,
    whether or not an item finished meanwhile: done/total, rate and time left (see
    `progress_log`), then a last line when the loop ran that long.
    """
    if total == 0:
        yield lambda n: None
        return
    if not sys.stderr.isatty():
        log = ProgressLog(total, label, lambda text: click.echo(text, err=True))
        with Heartbeat(log, log_line_seconds()):
            yield log.advance
        log.finish()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def tracked(items: Sequence[T], label: str) -> Iterable[T]:
    """Iterate over `items` with a progress bar."""
    with progress(len(items), label) as advance:
        for item in items:
            yield item
            advance(1)
