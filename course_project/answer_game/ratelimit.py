"""A token bucket per websocket: `rate` frames per second on average, bursts up to `burst`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float = 20.0
    burst: float = 40.0
    tokens: float = field(default=-1.0)
    at: float | None = None

    def take(self, *, now: float) -> bool:
        if self.at is None:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
