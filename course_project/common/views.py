from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from channels.layers import get_channel_layer
from django.http import HttpRequest, HttpResponse

from course_project.config import config_get
from course_project.version import code_version

from .db import pools_stats
from .http import api_view, json_error, json_response

# More sections of /api/health, added by apps at start-up (answer_game adds "game").
HEALTH_SECTIONS: dict[str, Callable[[], dict]] = {}


def redis_master(layer) -> str | None:
    """The master ("host:port") that the layer's Redis Sentinel pool last connected to; None
    before its first connection."""
    pool = getattr(layer.connection(0), "connection_pool", None)
    address = getattr(pool, "master_address", None)
    return f"{address[0]}:{address[1]}" if address else None


async def redis_ping(timeout: float = 2.0) -> bool:
    """The layer's Redis answers within `timeout` (its clients wait forever on a Redis that
    stalls without closing the socket: socket_timeout=None, for the blocking reads)."""
    layer = get_channel_layer()
    try:
        return bool(await asyncio.wait_for(layer.connection(0).ping(), timeout))
    except Exception:  # any failure means "not reachable" for a health check
        return False


@api_view("GET")
async def health(request: HttpRequest) -> HttpResponse:
    layer = get_channel_layer()
    redis_ok = await redis_ping()
    pools = pools_stats()
    ok = redis_ok and set(pools) == {"study", "game"}
    return json_response(
        {
            "status": "ok" if ok else "degraded",
            "service": "quiz-battle",
            "pid": os.getpid(),
            "code_version": code_version(),
            "pools": pools,
            "channel_layer": {
                "class": f"{type(layer).__module__}.{type(layer).__name__}",
                "redis": "ok" if redis_ok else "unreachable",
                # With QUIZ_REDIS_SENTINELS: the master the sentinels named, as last reached.
                **({"sentinel_master": redis_master(layer)}
                   if config_get().redis_sentinels else {}),
            },
            **{name: section() for name, section in HEALTH_SECTIONS.items()},
        },
        status=200 if ok else 503,
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error(404, "not_found", f"no route for {request.path}")
