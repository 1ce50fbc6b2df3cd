"""Deadlines the core keeps (will delays, session expiry), run by whoever owns the clock."""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class Timer:
    """A pending call; cancel() makes it a no-op."""

    __slots__ = ("callback", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], None] | None) -> None:
        self.deadline = deadline
        self.callback = callback

    def cancel(self) -> None:
        self.callback = None

    @property
    def cancelled(self) -> bool:
        return self.callback is None


class Timers:
    """A heap of deadlines; `run_due(now)` calls what is due. No thread, no event loop."""

    __slots__ = ("_heap", "_order")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return sum(1 for _, _, timer in self._heap if not timer.cancelled)

    def call_at(self, deadline: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(deadline, callback)
        heapq.heappush(self._heap, (deadline, next(self._order), timer))
        return timer

    def run_due(self, now: float) -> int:
        """Call every timer due by `now`, in deadline order; return how many ran."""
        heap = self._heap
        ran = 0
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            callback = timer.callback
            if callback is not None:
                timer.callback = None
                try:
                    callback()
                except Exception:
                    # One failing deadline must not stop the others (nor the clock task).
                    log.exception("timer callback failed")
                ran += 1
        return ran
