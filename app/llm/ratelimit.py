"""A thread-safe requests-per-minute limiter that spaces requests evenly (no bursts).

Each ``acquire`` reserves the next free slot, ``60 / rpm`` seconds (plus a 0.5 % safety margin) after the
previous one, and sleeps until it. So any 60-second window holds at most ``rpm`` request starts (any window of
``w`` seconds at most ``w * rpm / 60 + 1``). The limit holds per process: give each worker process its share.
"""

from __future__ import annotations

import threading
import time

SAFETY_MARGIN = 1.005


class RateLimiter:
    """At most ``rpm`` request starts per minute, evenly spaced."""

    def __init__(self, rpm: int) -> None:
        if rpm < 1:
            raise ValueError("rpm must be at least 1")
        self.rpm = rpm
        self.interval = 60.0 / rpm * SAFETY_MARGIN
        self._next_slot = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until this caller may start a request; returns the seconds waited."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
        wait = slot - now
        if wait > 0:
            time.sleep(wait)
        return wait
