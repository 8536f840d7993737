"""One circuit breaker for everything that calls a remote end that may be down (seed 002).

Used by the span export pipeline (`shinzo_otel._pipeline`) and the admin shell's event emitter: after
`failure_threshold` consecutive failures the circuit opens and calls are refused for `open_seconds`;
then one call goes through (the probe), and its outcome closes the circuit or opens it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    """Closed -> open after `failure_threshold` consecutive failures -> one probe after `open_seconds`.

    Args:
        failure_threshold: consecutive failures that open the circuit; at least 1 (seed 002: 3).
        open_seconds: how long the open circuit refuses calls before the probe; not negative
            (seed 002: 60).
        clock: monotonic seconds; injectable for tests.

    Raises:
        ValueError: `failure_threshold` below 1 or `open_seconds` negative.

    Thread-safe. Usage: `if breaker.allow(): ok = call(); breaker.record_success() if ok else
    breaker.record_failure()`; `record_failure` returns True when that failure opened the circuit (log
    it then, once).
    """

    def __init__(
        self, failure_threshold: int, open_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold}")
        if open_seconds < 0:
            raise ValueError(f"open_seconds must not be negative, got {open_seconds}")
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until: float | None = None

    @property
    def is_open(self) -> bool:
        """True while calls are refused (the circuit is open and its probe time has not come)."""
        return self.seconds_until_probe() > 0

    def seconds_until_probe(self) -> float:
        """0 when a call may be made now (closed, or open past its time: the probe)."""
        with self._lock:
            if self._open_until is None:
                return 0.0
            return max(0.0, self._open_until - self._clock())

    def allow(self) -> bool:
        """Whether a call may be made now."""
        return not self.is_open

    def record_success(self) -> bool:
        """Record a call that succeeded: the circuit closes. Returns True if it was open (recovered)."""
        with self._lock:
            was_open = self._open_until is not None
            self._failures = 0
            self._open_until = None
            return was_open

    def record_failure(self) -> bool:
        """Record a call that failed. Returns True when this failure opened the circuit (the threshold
        was reached, or the probe failed), False otherwise."""
        with self._lock:
            self._failures += 1
            if self._failures < self.failure_threshold and self._open_until is None:
                return False
            self._open_until = self._clock() + self.open_seconds
            return True
