"""Per-item work on Dask, with every item isolated in a forked child under a time and memory limit.

A pathological file (a parser that hangs, a zip bomb, a crash in a C extension) becomes an
`Outcome` with a reason (`timeout`, `memory_limit`, `crash`), never a hung or dead build. The
scheduler is a local Dask cluster (one single-threaded worker process per core) by default, or an
existing distributed cluster at `scheduler` (`tcp://host:port`), or `"inline"` (no Dask: the
calling process, for tests and one-core runs). `run_items` returns results in input order.

Isolation forks with `os.fork` (not multiprocessing, whose daemonic Dask workers may not have
children); the child sets RLIMIT_AS, runs the function over a batch of items and sends each
pickled result through a pipe as it finishes. The parent reads with a per-item deadline and kills
the child when it passes; the items after a failed one run again in a fresh child. Items of one
batch share a process, so state a parser leaks (a module-level cache) can reach the next item;
batches are small (MAX_BATCH) and a memory limit applies to the child as a whole.

`map_partitioned` is the same scheduler choice for pure per-item work (the stages after ingest):
partitions of items as plain Dask tasks, results in input order, a window of items in memory.
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib
import os
import pickle
import resource
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Limits:
    """Per-item limits: wall seconds and address-space megabytes (0 disables either)."""

    timeout_s: float = 120.0
    memory_mb: int = 4096


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """The result of one item: `value`, or a failure `reason` (`timeout`, `memory_limit`, `crash`,
    or the `reason` attribute of the exception raised) with a one-line `detail`."""

    value: R | None = None
    reason: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None


def run_isolated(func: Callable[[T], R], item: T, limits: Limits) -> Outcome[R]:
    """Run `func(item)` in a forked child under `limits`."""
    return run_isolated_batch(func, [item], limits)[0]


def run_isolated_batch(
    func: Callable[[T], R], items: Sequence[T], limits: Limits
) -> list[Outcome[R]]:
    """Run `func` over `items`, in order, in as few forked children as failures allow.

    One child works through the batch and sends each outcome as it finishes, so a fork (about
    10 ms from a process that has music21 loaded) is paid per batch, not per item. The time limit
    applies to each item: the deadline moves on with every outcome received. When the child
    hangs, crashes or runs out of memory, the item it was working on gets that failure and the
    items after it start again in a fresh child. A `memory_limit` or `crash` of an item that was
    not its child's first is confirmed in a child of its own first, so that memory or state the
    earlier items left behind never decides an item's outcome.
    """
    outcomes: list[Outcome[R]] = []
    while len(outcomes) < len(items):
        rest = items[len(outcomes) :]
        for k, outcome in enumerate(_run_child(func, rest, limits)):
            if k > 0 and outcome.reason in _STATEFUL:
                outcome = _run_child(func, rest[k : k + 1], limits)[0]
            outcomes.append(outcome)
    return outcomes


_FRAME = 8  # bytes of the length prefix of each outcome the child sends
_STATEFUL = ("memory_limit", "crash")  # failures that may come from earlier items' leftovers
_STOPPED = 3  # the child's exit status after a MemoryError: it stops so the rest start afresh


def _mapped_bytes() -> int:
    """This process's address space in bytes (Linux /proc), or 0 where it cannot be read."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _run_child(func: Callable[[T], R], items: Sequence[T], limits: Limits) -> list[Outcome[R]]:
    """Fork one child over `items`; the outcomes it sent, plus the failure that stopped it."""
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:  # child
        os.close(read_fd)
        # A crash here is an outcome, not news: don't let an inherited faulthandler (pytest's)
        # print the parent's stack.
        faulthandler.disable()
        code = 0
        try:
            if limits.memory_mb:
                # On top of what the child already maps (a worker that imported torch maps over
                # a GiB it never uses): the same file must pass or fail the same everywhere.
                cap = _mapped_bytes() + limits.memory_mb * 1024 * 1024
                hard = resource.getrlimit(resource.RLIMIT_AS)[1]
                if hard != resource.RLIM_INFINITY:  # never above a limit set from outside
                    cap = min(cap, hard)
                resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
            with os.fdopen(write_fd, "wb") as pipe:
                for item in items:
                    outcome = _outcome(func, item, limits)
                    data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
                    pipe.write(len(data).to_bytes(_FRAME, "big") + data)
                    pipe.flush()
                    if outcome.reason == "memory_limit":  # the heap may be in pieces: stop
                        code = _STOPPED
                        break
        except BaseException:  # the child must never return into the caller's stack
            traceback.print_exc(file=sys.stderr)
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    outcomes: list[Outcome[R]] = []
    try:
        timed_out = _read_frames(read_fd, pid, limits, outcomes)
    except BaseException:  # interrupted, or a frame would not unpickle: never leave the child
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    _, status = os.waitpid(pid, 0)
    if len(outcomes) == len(items) or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == _STOPPED):
        return outcomes
    if timed_out:
        failure: Outcome[R] = Outcome(
            reason="timeout", detail=f"still running after {limits.timeout_s:g} s"
        )
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        reason = "memory_limit" if sig == signal.SIGKILL else "crash"
        failure = Outcome(reason=reason, detail=f"worker child killed by signal {sig}")
    else:
        code = os.WEXITSTATUS(status)
        failure = Outcome(reason="crash", detail=f"worker child exited with status {code}")
    return [*outcomes, failure]


def _read_frames(read_fd: int, pid: int, limits: Limits, outcomes: list[Outcome[R]]) -> bool:
    """Append the child's outcomes as they arrive; kill it when an item overruns. Timed out?"""
    buffer = bytearray()
    deadline = time.monotonic() + limits.timeout_s if limits.timeout_s else None
    timed_out = False
    with os.fdopen(read_fd, "rb") as pipe:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([pipe], [], [], wait)
            if not ready:  # read on after the kill: whole frames already sent still count
                timed_out = True
                os.kill(pid, signal.SIGKILL)
                deadline = None
                continue
            chunk = os.read(pipe.fileno(), 1 << 20)
            if not chunk:
                return timed_out
            buffer += chunk
            while len(buffer) >= _FRAME:
                size = int.from_bytes(buffer[:_FRAME], "big")
                if len(buffer) < _FRAME + size:
                    break
                outcomes.append(pickle.loads(buffer[_FRAME : _FRAME + size]))  # our own child's
                del buffer[: _FRAME + size]
                if deadline is not None:  # the next item's time starts now
                    deadline = time.monotonic() + limits.timeout_s


def _outcome(func: Callable[[T], R], item: T, limits: Limits) -> Outcome[R]:
    """`func(item)` as an outcome: its value, or the reason it failed (runs in the child)."""
    try:
        return Outcome(value=func(item))
    except MemoryError:
        return Outcome(reason="memory_limit", detail=f"exceeded {limits.memory_mb} MB")
    except Exception as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        return Outcome(reason=str(reason), detail=" ".join(str(exc).split())[:300])


def _task(
    func: Callable[[T], R], items: Sequence[T], limits: Limits, preload: tuple[str, ...]
) -> list[Outcome[R]]:
    _preload(preload)
    return run_isolated_batch(func, items, limits)


def _preload(modules: Sequence[str]) -> None:
    """Import heavy modules once in this process so that every forked child inherits them
    (music21 takes about a second to import: per file, that would dominate)."""
    for name in modules:
        importlib.import_module(name)


def run_items(
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    limits: Limits | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
    preload: tuple[str, ...] = (),
) -> list[Outcome[R]]:
    """Run `func` over `items` (isolated, limited); outcomes in input order.

    `scheduler`: None for a local cluster of `workers` processes (default: the core count),
    `"inline"` for the calling process, or a distributed scheduler address. `on_done(n)` is called
    after each finished item (for progress bars). `func` must be a module-level function;
    `preload` names modules to import in each worker before it forks.
    """
    results: list[Outcome[R] | None] = [None] * len(items)
    for index, outcome in iter_items(
        func, items, limits=limits, scheduler=scheduler, workers=workers, preload=preload
    ):
        results[index] = outcome
        if on_done:
            on_done(1)
    return [r for r in results if r is not None]


def iter_items(
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    limits: Limits | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    preload: tuple[str, ...] = (),
    batch: int | None = None,
) -> Iterator[tuple[int, Outcome[R]]]:
    """Like `run_items`, but yield (input index, outcome) as each batch of items finishes.

    `batch`: items per forked child (and per Dask task). By default up to MAX_BATCH, fewer when
    there are too few items to give every worker several batches.
    """
    limits = limits or Limits()
    if not items:
        return
    if scheduler == "inline":
        _preload(preload)
        for start, chunk in _batches(items, batch or MAX_BATCH):
            for offset, outcome in enumerate(run_isolated_batch(func, chunk, limits)):
                yield start + offset, outcome
        return
    yield from _iter_dask(func, items, limits, scheduler, workers, preload, batch)


MAX_BATCH = 16  # items per child: the fork costs as much as parsing a small MIDI file


def _batches(items: Sequence[T], size: int) -> list[tuple[int, Sequence[T]]]:
    """(start index, items) chunks of at most `size`."""
    return [(start, items[start : start + size]) for start in range(0, len(items), size)]


def _iter_dask(
    func: Callable[[T], R],
    items: Sequence[T],
    limits: Limits,
    scheduler: str | None,
    workers: int | None,
    preload: tuple[str, ...],
    batch: int | None,
) -> Iterator[tuple[int, Outcome[R]]]:
    from dask.distributed import Client, as_completed

    cluster = _local_cluster(workers) if scheduler is None else None
    client = Client(cluster if cluster is not None else scheduler)
    try:
        if batch is None:  # several batches per worker slot, so that the load balances
            slots = max(1, sum(client.nthreads().values()))
            batch = max(1, min(MAX_BATCH, len(items) // (4 * slots)))
        chunks = _batches(items, batch)
        futures = [
            client.submit(_task, func, chunk, limits, preload, pure=False) for _, chunk in chunks
        ]
        start_of = {f.key: start for f, (start, _) in zip(futures, chunks, strict=True)}
        for future in as_completed(futures):
            outcomes: list[Outcome[R]] = future.result()
            for offset, outcome in enumerate(outcomes):
                yield start_of[future.key] + offset, outcome
            future.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _local_cluster(workers: int | None) -> Any:
    """A local Dask cluster of `workers` single-threaded processes (default: the core count)."""
    from dask.distributed import LocalCluster

    return LocalCluster(
        n_workers=workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # a free port: never clash with another cluster
        # CRITICAL: a worker heartbeat racing the shutdown logs a harmless ERROR traceback;
        # task failures still reach us through future.result().
        silence_logs=50,
    )


def _apply(func: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`func` over one partition (runs on a worker)."""
    return [func(item) for item in items]


def map_partitioned(
    func: Callable[[T], R],
    items: Iterable[T],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    partition: int = 64,
) -> Iterator[R]:
    """`func(item)` for every item, in input order, computed in partitions on Dask.

    For pure per-item work (the stages after ingest), so without ingest's isolation: an
    exception fails the run as it would inline. `scheduler` as in `run_items` (`"inline"`: a
    plain loop in this process). Memory stays bounded: items are read a window at a time (two
    partitions per worker slot) and the next window is submitted while this one is yielded.
    """
    if scheduler == "inline":
        yield from map(func, items)
        return
    from dask.distributed import Client

    cluster = _local_cluster(workers) if scheduler is None else None
    client = Client(cluster if cluster is not None else scheduler)
    try:
        slots = max(1, sum(client.nthreads().values()))
        window = 2 * slots
        source = iter(items)
        remote = client.scatter(func, broadcast=True)  # sent once, not with every partition

        def submit() -> list[Any]:
            chunks = [list(islice(source, partition)) for _ in range(window)]
            return [client.submit(_apply, remote, c, pure=False) for c in chunks if c]

        pending = submit()
        while pending:
            upcoming = submit()  # read and send the next window while this one computes
            for future in pending:
                yield from future.result()
                future.release()
            pending = upcoming
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
