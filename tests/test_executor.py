from __future__ import annotations

import os
import signal
import time

import pytest

from pipeline.errors import ScoreParseError
from pipeline.executor import Limits, run_isolated, run_items


def work(x: int) -> int:
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


def test_isolated_outcomes_name_the_failure() -> None:
    assert run_isolated(work, 5, LIMITS).value == 50
    started = time.monotonic()
    hang = run_isolated(work, 1, LIMITS)
    assert hang.reason == "timeout" and time.monotonic() - started < 10
    assert run_isolated(work, 2, LIMITS).reason == "memory_limit"
    bad = run_isolated(work, 3, LIMITS)
    assert bad.reason == "malformed_xml" and "bad file" in bad.detail
    assert run_isolated(work, 4, LIMITS).reason == "crash"


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
