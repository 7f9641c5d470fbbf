"""Per-item work on Dask, with every item isolated in a forked child under a time and memory limit.

A pathological file (a parser that hangs, a zip bomb, a crash in a C extension) becomes an
`Outcome` with a reason (`timeout`, `memory_limit`, `crash`), never a hung or dead build. The
scheduler is a local Dask cluster (one single-threaded worker process per core) by default, or an
existing distributed cluster at `scheduler` (`tcp://host:port`), or `"inline"` (no Dask: the
calling process, for tests and one-core runs). Results come back in input order.

Isolation forks with `os.fork` (not multiprocessing, whose daemonic Dask workers may not have
children); the child sets RLIMIT_AS, runs the function and sends the pickled result through a
pipe. The parent reads with a deadline and kills the child when it passes.
"""

from __future__ import annotations

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        # A crash here is an outcome, not news: don't let an inherited faulthandler (pytest's)
        # print the parent's stack.
        faulthandler.disable()
        code = 0
        try:
            if limits.memory_mb:
                cap = limits.memory_mb * 1024 * 1024
                resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            try:
                payload: Outcome[R] = Outcome(value=func(item))
            except MemoryError:
                payload = Outcome(reason="memory_limit", detail=f"exceeded {limits.memory_mb} MB")
            except Exception as exc:
                reason = getattr(exc, "reason", None) or type(exc).__name__
                payload = Outcome(reason=str(reason), detail=" ".join(str(exc).split())[:300])
            data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(data)
        except BaseException:  # the child must never return into the caller's stack
            traceback.print_exc(file=sys.stderr)
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + limits.timeout_s if limits.timeout_s else None
    timed_out = False
    with os.fdopen(read_fd, "rb") as pipe:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([pipe], [], [], wait)
            if not ready:
                timed_out = True
                os.kill(pid, signal.SIGKILL)
                break
            chunk = os.read(pipe.fileno(), 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return Outcome(reason="timeout", detail=f"still running after {limits.timeout_s:g} s")
    if chunks:
        result: Outcome[R] = pickle.loads(b"".join(chunks))  # our own child's bytes
        return result
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        reason = "memory_limit" if sig == signal.SIGKILL else "crash"
        return Outcome(reason=reason, detail=f"worker child killed by signal {sig}")
    return Outcome(
        reason="crash", detail=f"worker child exited with status {os.WEXITSTATUS(status)}"
    )


def _task(func: Callable[[T], R], item: T, limits: Limits, preload: tuple[str, ...]) -> Outcome[R]:
    _preload(preload)
    return run_isolated(func, item, limits)


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
        func, items, limits=limits, scheduler=scheduler, workers=workers
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
) -> Iterator[tuple[int, Outcome[R]]]:
    """Like `run_items`, but yield (input index, outcome) as each item finishes."""
    limits = limits or Limits()
    if not items:
        return
    if scheduler == "inline":
        _preload(preload)
        for index, item in enumerate(items):
            yield index, run_isolated(func, item, limits)
        return
    yield from _iter_dask(func, items, limits, scheduler, workers, preload)


def _iter_dask(
    func: Callable[[T], R],
    items: Sequence[T],
    limits: Limits,
    scheduler: str | None,
    workers: int | None,
    preload: tuple[str, ...],
) -> Iterator[tuple[int, Outcome[R]]]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster: Any = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: never clash with another cluster
            # CRITICAL: a worker heartbeat racing the shutdown logs a harmless ERROR traceback;
            # task failures still reach us through future.result().
            silence_logs=50,
        )
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = [client.submit(_task, func, item, limits, preload, pure=False) for item in items]
        index = {f.key: i for i, f in enumerate(futures)}
        for future in as_completed(futures):
            outcome: Outcome[R] = future.result()
            yield index[future.key], outcome
            future.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
