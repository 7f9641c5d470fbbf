"""Progress as plain lines for a log: what a progress bar shows, when no terminal shows a bar.

A build whose output goes to a file (CI, `nohup`, `> build.log`) gets one line per interval:
items done of the total, the share, the time so far, the recent rate and the time left:

    ingest: reading: 1,234/13,000 (9.5%) after 5m02s; 4.1/s, about 48m10s left

A heartbeat thread prints it on the interval whether or not an item finished since the last
line, so a file that takes two minutes still leaves a line every interval rather than silence;
once no item has finished for a minute (`QUIET_S`) the line says since when. Once every item is
done but the loop has not returned (dedupe's grouping after its signatures, the last shard being
written) the line says so. The rate is measured over the last two minutes (`RATE_WINDOW_S`), so
the files a cache answered in the first seconds do not make the time left look short for long.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

RATE_WINDOW_S = 120.0  # the rate (and time left) is measured over about this many seconds
QUIET_S = 60.0  # a line also says when the last item finished, once that is this long ago


def duration(seconds: float) -> str:
    """`35s`, `4m05s`, `1h07m`: a short, sortable-looking length of time."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def rate_text(per_second: float) -> str:
    """Items per second, or per minute when under one a second."""
    if per_second >= 10:
        return f"{per_second:,.0f}/s"
    if per_second >= 1:
        return f"{per_second:.1f}/s"
    return f"{60 * per_second:.1f}/min"


class ProgressLog:
    """The state of one long loop and the log line that describes it.

    `advance` may be called from the loop's thread while `tick` runs on the heartbeat's; `clock`
    (seconds, monotonic) is injectable so that tests need not wait.
    """

    def __init__(
        self,
        total: int,
        label: str,
        echo: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.label = total, label
        self._echo, self._clock = echo, clock
        self._lock = threading.Lock()
        self.done = 0
        self.lines = 0  # progress lines printed so far
        self.started = self._last_item = clock()
        # (time, done) at the start and at each line: the rate is taken over the recent ones
        self._samples: deque[tuple[float, int]] = deque([(self.started, 0)])

    def advance(self, n: int) -> None:
        """Count `n` more items done."""
        with self._lock:
            self.done += n
            if n:
                self._last_item = self._clock()

    def line(self) -> str:
        """The progress line for now."""
        with self._lock:
            now, done, last_item = self._clock(), self.done, self._last_item
            while len(self._samples) > 1 and now - self._samples[1][0] >= RATE_WINDOW_S:
                self._samples.popleft()  # keep one sample at least a window old, if any
            since, done_then = self._samples[0]
        share = 100 * done / self.total if self.total else 100.0
        head = f"{self.label}: {done:,}/{self.total:,} ({share:.1f}%) after {duration(now - self.started)}"
        if done >= self.total:
            return f"{head}; all done, finishing"
        if done == 0:
            return f"{head}; none finished yet"
        quiet = f"none finished in the last {duration(now - last_item)}"
        per_second = (done - done_then) / (now - since) if now > since else 0.0
        if per_second <= 0:
            return f"{head}; {quiet}"
        left = (self.total - done) / per_second
        line = f"{head}; {rate_text(per_second)}, about {duration(left)} left"
        return f"{line}; {quiet}" if now - last_item >= QUIET_S else line

    def tick(self) -> None:
        """Print the line for now and remember where the loop stood (for the rate)."""
        text = self.line()
        with self._lock:
            self._samples.append((self._clock(), self.done))
            self.lines += 1
        self._echo(text)

    def finish(self) -> None:
        """A last line, when the loop ran long enough to print any: the log shows it ended."""
        if self.lines:
            elapsed = duration(self._clock() - self.started)
            self._echo(f"{self.label}: {self.done:,}/{self.total:,} done in {elapsed}")


class Heartbeat:
    """A daemon thread calling `log.tick()` every `interval_s` seconds until stopped."""

    def __init__(self, log: ProgressLog, interval_s: float) -> None:
        self._log, self._interval = log, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress-log", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._log.tick()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
