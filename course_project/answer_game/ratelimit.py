"""The token bucket lives in common.consumers now (every consumer is rate-limited); kept here so
older imports keep working."""

from common.consumers import TokenBucket

__all__ = ["TokenBucket"]
