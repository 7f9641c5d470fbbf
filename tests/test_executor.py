from __future__ import annotations

import os
import signal
import time

import pytest

from pipeline.errors import ScoreParseError
from pipeline.executor import Limits, iter_items, run_isolated, run_isolated_batch, run_items

LEAKED: list[bytearray] = []


def work(x: int) -> int:
    if x == 10:
        os._exit(0)  # a library that exits the process
    if x == 11:
        LEAKED.append(bytearray(350 * 2**20))  # state an item leaves behind in its process
        return 110
    if x == 12:
        return len(bytearray(350 * 2**20)) // 2**20
    if x == 1:
        time.sleep(60)  # a parser that hangs
    if x == 2:
        return len(bytearray(2_000_000_000))  # a decompression bomb
    if x == 3:
        raise ScoreParseError("bad file", "malformed_xml")
    if x == 4:
        os.kill(os.getpid(), signal.SIGSEGV)  # a crash in a C extension
    return x * 10


LIMITS = Limits(timeout_s=3, memory_mb=1024)


@pytest.mark.corpus
def test_isolated_outcomes_name_the_failure() -> None:
    assert run_isolated(work, 5, LIMITS).value == 50
    started = time.monotonic()
    hang = run_isolated(work, 1, LIMITS)
    assert hang.reason == "timeout" and time.monotonic() - started < 10
    assert run_isolated(work, 2, LIMITS).reason == "memory_limit"
    bad = run_isolated(work, 3, LIMITS)
    assert bad.reason == "malformed_xml" and "bad file" in bad.detail
    assert run_isolated(work, 4, LIMITS).reason == "crash"


@pytest.mark.corpus
@pytest.mark.parametrize("scheduler", ["inline", None])
def test_run_items_keeps_order_and_reports_progress(scheduler: str | None) -> None:
    done: list[int] = []
    outcomes = run_items(
        work, [0, 3, 5, 1], limits=LIMITS, scheduler=scheduler, workers=2, on_done=done.append
    )
    assert [o.value for o in outcomes] == [0, None, 50, None]
    assert [o.reason for o in outcomes] == [None, "malformed_xml", None, "timeout"]
    assert sum(done) == 4
    assert run_items(work, [], scheduler=scheduler) == []


@pytest.mark.corpus
def test_a_batch_survives_its_failures_and_keeps_order() -> None:
    """One child per batch: a hang, a bomb or a crash fails that item alone; the items after it
    run again in a fresh child, and each item gets its own time limit."""
    started = time.monotonic()
    outcomes = run_isolated_batch(work, [5, 1, 6, 2, 7, 4, 8, 3, 9], LIMITS)
    assert [o.value for o in outcomes] == [50, None, 60, None, 70, None, 80, None, 90]
    reasons = [o.reason for o in outcomes]
    assert reasons == [
        None,
        "timeout",
        None,
        "memory_limit",
        None,
        "crash",
        None,
        "malformed_xml",
        None,
    ]
    assert time.monotonic() - started < 20  # one timeout of 3 s, not one per remaining item


def slow_ok(x: int) -> int:
    time.sleep(1.2)
    return x


@pytest.mark.corpus
def test_the_time_limit_is_per_item_not_per_batch() -> None:
    outcomes = run_isolated_batch(slow_ok, [1, 2, 3, 4], Limits(timeout_s=2, memory_mb=0))
    assert [o.value for o in outcomes] == [1, 2, 3, 4]  # 4.8 s in all, under 2 s each


def pid_of(_: int) -> int:
    return os.getpid()


# None: a local Dask cluster, seconds to start.
@pytest.mark.parametrize("scheduler", ["inline", pytest.param(None, marks=pytest.mark.corpus)])
def test_items_share_a_child_within_a_batch(scheduler: str | None) -> None:
    pairs = sorted(iter_items(pid_of, list(range(12)), scheduler=scheduler, workers=2, batch=4))
    assert [i for i, _ in pairs] == list(range(12))
    pids = [o.value for _, o in pairs]
    assert all(len(set(pids[k : k + 4])) == 1 for k in range(0, 12, 4))
    assert len(set(pids)) == 3


def test_an_item_that_exits_the_child_fails_alone() -> None:
    outcomes = run_isolated_batch(work, [5, 10, 6], LIMITS)
    assert [o.value for o in outcomes] == [50, None, 60]
    assert outcomes[1].reason == "crash" and "status 0" in outcomes[1].detail


def test_memory_left_behind_by_an_earlier_item_never_fails_a_later_one() -> None:
    """Together, items 11 and 12 exceed the cap; each alone fits. Item 12 runs out of memory
    in the shared child, is confirmed alone, and passes."""
    with open("/proc/self/statm") as statm:
        used_mb = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE") // 2**20
    limits = Limits(timeout_s=30, memory_mb=used_mb + 600)
    outcomes = run_isolated_batch(work, [11, 12, 5], limits)
    assert [o.value for o in outcomes] == [110, 350, 50], [o.reason for o in outcomes]


def test_the_memory_cap_is_counted_on_top_of_what_the_worker_maps() -> None:
    from pipeline.executor import _mapped_bytes

    ballast = bytearray(300 * 1024 * 1024)  # the worker maps 300 MB before it forks
    assert _mapped_bytes() > 300 * 1024 * 1024
    outcome = run_isolated(_allocate, 100, Limits(timeout_s=30, memory_mb=200))
    assert outcome.ok, outcome.detail  # 100 MB more fits in a 200 MB cap on top of the ballast
    outcome = run_isolated(_allocate, 400, Limits(timeout_s=30, memory_mb=200))
    assert outcome.reason == "memory_limit"
    del ballast


def _allocate(mb: int) -> int:
    return len(bytearray(mb * 1024 * 1024))
