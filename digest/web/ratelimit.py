"""Per-client and per-address rate limits, in memory (one process)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    """At most `limit` hits per `period` seconds for each key, in memory (one process).

    `hit(key)` counts a hit and returns 0, or returns the seconds to wait (counting nothing)."""

    def __init__(
        self,
        limit: int,
        period: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.limit, self.period, self.clock, self.max_keys = limit, period, clock, max_keys
        self.hits: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def hit(self, key: str) -> float:
        now = self.clock()
        with self.lock:
            window = self.hits.get(key)
            if window is None:
                if len(self.hits) >= self.max_keys:
                    self._sweep(now)
                window = self.hits[key] = deque()
            while window and window[0] <= now - self.period:
                window.popleft()
            if len(window) >= self.limit:
                return max(window[0] + self.period - now, 0.001)
            window.append(now)
            return 0.0

    def _sweep(self, now: float) -> None:
        """Forget keys with no hit in the window; if all are busy, the oldest half."""
        stale = [k for k, w in self.hits.items() if not w or w[-1] <= now - self.period]
        for key in stale:
            del self.hits[key]
        if len(self.hits) >= self.max_keys:
            for key in sorted(self.hits, key=lambda k: self.hits[k][-1])[: self.max_keys // 2]:
                del self.hits[key]
