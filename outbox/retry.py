"""When to try a failed job again: the server's Retry-After if it gave one, else backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 1.0
    max_seconds: float = 300.0
    max_attempts: int = 12

    def delay(self, attempts: int, retry_after: float | None) -> float:
        """Seconds to wait after the `attempts`-th failure.

        Retry-After is a floor, never shortened; a little jitter on top stops every throttled job
        from coming back in the same instant. Without it: "full jitter" exponential backoff.
        """
        if retry_after is not None:
            return min(retry_after, self.max_seconds * 4) + random.uniform(0, 0.1 * retry_after + 0.05)
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(attempts - 1, 0))
        return random.uniform(ceiling / 2, ceiling)

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
