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
