from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from pipeline.cli.common import LOG_LINE_ENV, log_line_seconds, progress
from pipeline.errors import GnmError
from pipeline.progress_log import Heartbeat, ProgressLog, duration, rate_text


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def log_with(
    total: int, label: str = "ingest: reading"
) -> tuple[ProgressLog, FakeClock, list[str]]:
    clock, lines = FakeClock(), []
    return ProgressLog(total, label, lines.append, clock), clock, lines


def test_a_line_shows_done_of_total_share_time_rate_and_time_left() -> None:
    log, clock, lines = log_with(13_000)
    clock.now += 300
    log.advance(1_200)
    log.tick()
    assert lines == ["ingest: reading: 1,200/13,000 (9.2%) after 5m00s; 4.0/s, about 49m10s left"]


def test_a_two_minute_file_still_leaves_a_line_every_interval() -> None:
    # The heartbeat ticks on the interval whatever the loop does: the line says how long ago
    # the last item finished instead of repeating a rate.
    log, clock, lines = log_with(10)
    clock.now += 10
    log.advance(3)
    for _ in range(4):  # 30 s apart, no item finishing
        clock.now += 30
        log.tick()
    assert lines == [
        "ingest: reading: 3/10 (30.0%) after 40s; 4.5/min, about 1m33s left",
        "ingest: reading: 3/10 (30.0%) after 1m10s; 2.6/min, about 2m43s left; "
        "none finished in the last 1m00s",
        "ingest: reading: 3/10 (30.0%) after 1m40s; 1.8/min, about 3m53s left; "
        "none finished in the last 1m30s",
        "ingest: reading: 3/10 (30.0%) after 2m10s; 1.4/min, about 5m03s left; "
        "none finished in the last 2m00s",
    ]
    clock.now += 300  # past the rate's window (RATE_WINDOW_S): no rate left to quote
    log.tick()
    assert lines[-1] == "ingest: reading: 3/10 (30.0%) after 7m10s; none finished in the last 7m00s"


def test_before_the_first_item_the_line_says_so() -> None:
    log, clock, lines = log_with(5)
    clock.now += 30
    log.tick()
    assert lines == ["ingest: reading: 0/5 (0.0%) after 30s; none finished yet"]


def test_the_rate_forgets_a_burst_of_cached_files_after_the_window() -> None:
    log, clock, lines = log_with(10_000)
    log.advance(5_000)  # answered by the cache in the first second
    for _ in range(6):  # then one file a second, a line every 30 s, for 3 minutes
        clock.now += 30
        log.advance(30)
        log.tick()
    assert lines[0].endswith("; 168/s, about 30s left")  # the burst still counts at first
    assert lines[-1] == (
        "ingest: reading: 5,180/10,000 (51.8%) after 3m00s; 1.0/s, about 1h20m left"
    )


def test_when_every_item_is_done_the_line_says_the_stage_is_finishing() -> None:
    log, clock, lines = log_with(357, "dedupe")
    log.advance(357)
    clock.now += 45
    log.tick()
    log.finish()
    assert lines == [
        "dedupe: 357/357 (100.0%) after 45s; all done, finishing",
        "dedupe: 357/357 done in 45s",
    ]


def test_a_short_loop_prints_nothing() -> None:
    log, _clock, lines = log_with(3)
    log.advance(3)
    log.finish()
    assert lines == []


def test_durations_and_rates_read_as_people_write_them() -> None:
    assert [duration(s) for s in (0, 35.4, 245, 3600 * 2 + 61)] == ["0s", "35s", "4m05s", "2h01m"]
    assert [rate_text(r) for r in (120.0, 4.06, 0.25)] == ["120/s", "4.1/s", "15.0/min"]


def test_the_heartbeat_ticks_with_no_item_advancing() -> None:
    ticked = threading.Event()
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if len(lines) >= 3:
            ticked.set()

    log = ProgressLog(2, "slow", echo)
    with Heartbeat(log, 0.01):
        assert ticked.wait(5)
    assert all(line.startswith("slow: 0/2 (0.0%)") for line in lines)


def test_progress_without_a_terminal_prints_lines_while_the_loop_waits(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(LOG_LINE_ENV, "0.01")
    seen = threading.Event()
    real_echo: Callable[..., None] = __import__("click").echo

    def echo(message: str, err: bool = False) -> None:
        real_echo(message, err=err)
        seen.set()

    monkeypatch.setattr("click.echo", echo)
    with progress(4, "ingest: reading") as advance:
        advance(1)
        assert seen.wait(5)  # a line came while no item finished
        advance(3)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("ingest: reading: 1/4 (25.0%) after ")
    assert err[-1].startswith("ingest: reading: 4/4 done in ")


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan", "inf"])
def test_a_bad_log_interval_is_refused_with_its_name(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOG_LINE_ENV, value)
    with pytest.raises(GnmError, match=LOG_LINE_ENV):
        log_line_seconds()
