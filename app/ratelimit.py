"""A small in-process token-bucket rate limiter, one bucket per client address.

Each worker process keeps its own buckets, so with N workers a client gets up to N times the limit: enough to stop a
runaway script, not a quota. Behind a proxy every client shares the proxy's address; put the limit in the proxy there.
"""

from __future__ import annotations

import threading
import time

MAX_CLIENTS = 10_000  # buckets kept before full ones (clients idle for a whole period) are forgotten


class RateLimiter:
    """Allows `limit` requests per `period` seconds per key, refilled continuously."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, time of last update)
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def retry_after(self, key: str, now: float | None = None) -> float | None:
        """Take one request for `key`: None when allowed, else the seconds until one more is."""
        return self._take(key, time.monotonic() if now is None else now, take=True)

    def wait_time(self, key: str, now: float | None = None) -> float | None:
        """What `retry_after` would answer, taking nothing: for limits that count only failures, known afterwards."""
        return self._take(key, time.monotonic() if now is None else now, take=False)

    def _take(self, key: str, now: float, take: bool) -> float | None:
        rate = self.limit / self.period
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.limit), now))
            tokens = min(float(self.limit), tokens + (now - last) * rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / rate
            if not take:
                return None
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > MAX_CLIENTS and now >= self._next_sweep:
                self._forget_idle(now)
                self._next_sweep = now + self.period  # at most one O(clients) sweep per period, not per request
        return None

    def _forget_idle(self, now: float) -> None:
        idle = [key for key, (_, last) in self._buckets.items() if now - last >= self.period]
        for key in idle:
            del self._buckets[key]
