"""What the `gnm` command groups share: the --params and --profile options and the progress bar."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import click

DEFAULT_PROFILE = "default"

T = TypeVar("T")

LOG_LINE_S = 30.0  # without a terminal, a progress line at most this often (seconds)

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


@contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr and the callback that advances it.

    Without a terminal (a log file, CI) a plain line `label: done/total` goes to stderr at most
    every `LOG_LINE_S` seconds, so a long stage still shows where it is.
    """
    if total == 0:
        yield lambda n: None
        return
    if not sys.stderr.isatty():
        done, last = 0, time.monotonic()
        start = last

        def advance(n: int) -> None:
            nonlocal done, last
            done += n
            if time.monotonic() - last >= LOG_LINE_S:
                last = time.monotonic()
                click.echo(f"{label}: {done}/{total}", err=True)

        yield advance
        if done and time.monotonic() - start >= LOG_LINE_S:  # a long stage says it finished
            click.echo(f"{label}: {done}/{total}", err=True)
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
