"""Sliding-window request limits (OrdinalsBot: 300 requests a minute on `GET /order`).

A request is allowed when fewer than `limit` allowed requests from the same key fall in the last
`window_s` seconds; refused requests do not count. Old timestamps and idle keys are pruned, so
memory stays bounded by the number of keys active within one window (itself capped).
"""

from __future__ import annotations

import math
from collections import deque

MAX_KEYS = 10_000
"""Beyond this many active keys the oldest idle ones are dropped first."""


class SlidingWindowLimiter:
    """At most `limit` requests per key in any `window_s` seconds.

    Args:
        limit: requests allowed per window.
        window_s: window length in seconds.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, now_s: float) -> int | None:
        """Count one request at `now_s`; None if allowed, else whole seconds until it would be."""
        hits = self._hits.get(key)
        if hits is None:
            self._prune(now_s)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now_s - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1, math.ceil(hits[0] + self.window_s - now_s))
        hits.append(now_s)
        return None

    def active_keys(self) -> int:
        """Keys currently remembered."""
        return len(self._hits)

    def _prune(self, now_s: float) -> None:
        """Forget keys with no request inside the window; cap the number of keys."""
        cutoff = now_s - self.window_s
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= cutoff]:
            del self._hits[key]
        while len(self._hits) >= MAX_KEYS:
            del self._hits[next(iter(self._hits))]
