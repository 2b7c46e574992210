"""When and how long to wait before retrying a part."""
from __future__ import annotations

import random
from dataclasses import dataclass

# Status codes worth another try: server faults and throttling. Every other 4xx is final.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in delay."""

    max_attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 20.0
    # Retry-After can ask for long waits; honour it but not beyond this.
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None, *, rng: random.Random = random._inst) -> float:  # type: ignore[attr-defined]
        """Seconds to wait before attempt number ``attempt + 1`` (attempt counts from 1)."""
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        jittered = rng.uniform(backoff / 2, backoff)
        if retry_after is not None:
            return max(jittered, min(retry_after, self.max_retry_after))
        return jittered


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given in seconds (COS sends seconds); None if absent or odd."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
