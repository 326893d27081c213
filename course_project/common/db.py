"""The two aiomysql pools (the guide's db1/db2) and their lifecycle.

The guide built them at settings import with `run_coroutine_threadsafe` on whatever loop existed
then. A pool belongs to the loop that created it, so here the ASGI lifespan handler opens them on
uvicorn's running loop at startup and closes them at shutdown.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import aiomysql
from django.conf import settings

PoolName = Literal["study", "game"]

_pools: dict[str, aiomysql.Pool] = {}
_lock = asyncio.Lock()


class PoolsNotOpen(RuntimeError):
    pass


async def pools_open() -> dict[str, aiomysql.Pool]:
    """Create both pools on the running loop. A pool already open on this loop is kept; a closed
    one, or one made on another loop (whose connections cannot be used from this one), is
    replaced."""
    async with _lock:
        loop = asyncio.get_running_loop()
        for name, extra in settings.AIOMYSQL_POOLS.items():
            pool = _pools.get(name)
            if pool is not None and pool._loop is loop and not pool._closed:
                continue
            _pools[name] = await aiomysql.create_pool(**settings.AIOMYSQL_COMMON, **extra)
    return dict(_pools)


async def pools_close() -> None:
    async with _lock:
        while _pools:
            _, pool = _pools.popitem()
            pool.close()  # close() first, then wait_closed(): the other order raises
            await pool.wait_closed()


def pool_get(name: PoolName) -> aiomysql.Pool:
    try:
        pool = _pools[name]
    except KeyError:
        raise PoolsNotOpen(
            f"the {name!r} pool is not open: run inside the ASGI app (its lifespan opens the "
            "pools) or `await pools_open()` first"
        ) from None
    if pool._loop is not asyncio.get_running_loop():
        raise PoolsNotOpen(f"the {name!r} pool belongs to another event loop")
    return pool


def pools_stats() -> dict[str, dict[str, int]]:
    return {
        name: {
            "size": pool.size,
            "free": pool.freesize,
            "minsize": pool.minsize,
            "maxsize": pool.maxsize,
        }
        for name, pool in sorted(_pools.items())
    }
