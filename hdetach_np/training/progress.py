"""What a long run says about itself: the expected duration, measured on its first iterations.

    est = DurationEstimate(start=0, stop=cfg.total_iterations)
    ...                                 # after each iteration k (1-based count of updates done):
    line = est.after_iteration(k)       # a line once, when the run will take longer than LONG_RUN
    if line: print(line)
"""

from __future__ import annotations

import time

LONG_RUN = 600.0  # seconds: runs expected to take longer get one line with the estimate
WARMUP, MEASURED = 2, 20  # iterations skipped (first allocations), then timed


def format_duration(seconds: float) -> str:
    """'45 s', '12 min', '3.4 h', '2.1 days'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


class DurationEstimate:
    """Times iterations start+WARMUP+1 .. start+WARMUP+MEASURED and, if the rest of the run up to
    `stop` would take longer than `threshold` seconds, returns one line saying so and how to shorten it."""

    def __init__(self, start: int, stop: int, threshold: float = LONG_RUN):
        self.start, self.stop, self.threshold = start, stop, threshold
        self._t0 = None

    def after_iteration(self, k: int) -> str | None:
        if k == self.start + WARMUP:
            self._t0 = time.perf_counter()
        elif self._t0 is not None and k == self.start + WARMUP + MEASURED:
            per_iteration = (time.perf_counter() - self._t0) / MEASURED
            return self.line(per_iteration, self.stop - k)
        return None

    def line(self, per_iteration: float, remaining: int) -> str | None:
        """The line for `remaining` iterations at `per_iteration` seconds each (None if short)."""
        seconds = per_iteration * remaining
        if seconds <= self.threshold:
            return None
        return (f"expected duration: about {format_duration(seconds)} for the remaining {remaining:,} iterations "
                f"({per_iteration * 1e3:.0f} ms per iteration measured on {MEASURED}; evaluations come on top). "
                "To shorten it: fewer --epochs or --iterations-per-epoch, or --stop-after K and later --resume")


SLOWDOWN = 3.0  # a window of iterations this many times slower than the fastest one gets one line
WINDOW = 100  # iterations per timed window


class SlowdownWatch:
    """For a run on more than one BLAS thread: times windows of `window` training iterations and,
    the first time a window is `factor` times slower than the fastest one so far, returns one line
    saying why that usually happens (another process took a core, and a waiting BLAS thread spins
    on the core the run needs) and how to go on with one thread.

        watch = SlowdownWatch(threads=2, resume_hint="hdetach-np train --resume RUN")
        line = watch.after_iteration(k)   # after each training iteration
        watch.skip()                      # after work that is not a training iteration (evaluations)
    """

    def __init__(self, threads: int | None, resume_hint: str | None = None, factor: float = SLOWDOWN,
                 window: int = WINDOW):
        self.active = threads is not None and threads > 1
        self.threads, self.resume_hint, self.factor, self.window = threads, resume_hint, factor, window
        self.fastest = None  # seconds per iteration of the fastest window so far
        self._t = self._k = None  # start of the current window: clock and iteration

    def skip(self) -> None:
        """Start a new window now (the time since the last iteration is not a training iteration's)."""
        self._t = self._k = None

    def after_iteration(self, k: int) -> str | None:
        if not self.active:
            return None
        now = time.perf_counter()
        if self._t is None:
            self._t, self._k = now, k
            return None
        if k - self._k < self.window:
            return None
        per_iteration = (now - self._t) / (k - self._k)
        self._t, self._k = now, k
        if self.fastest is None or per_iteration < self.fastest:
            self.fastest = per_iteration
            return None
        if per_iteration <= self.factor * self.fastest:
            return None
        self.active = False  # one line per run
        how = (f"Ctrl-C (it writes a checkpoint), then {self.resume_hint} --threads 1" if self.resume_hint
               else "rerun with --threads 1")
        return (f"iterations are now {per_iteration / self.fastest:.0f}x slower than earlier in this run "
                f"({per_iteration * 1e3:.0f} ms against {self.fastest * 1e3:.0f} ms) on {self.threads} BLAS "
                "threads: another process probably took a core, and a waiting BLAS thread spins on the core this "
                f"run needs. To go on with one thread: {how} (the last bits of later results may differ)")
