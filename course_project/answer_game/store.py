"""Redis keys of the game: room snapshots, driver leases, process heartbeats.

    quiz:room:<id>:state    hash {state: JSON snapshot, saved_ms: Redis TIME in ms,
                            owner: the inbox of the driver that saved it ('' = handed back)}
    quiz:room:<id>:driver   the driver's inbox channel; SET NX PX 3000, renewed with a CAS script
    quiz:proc:<proc>        a process is alive (<proc>: its hub inbox); PX 3000, renewed
    quiz:room:<id>:rematch  the room opened for the rematch of finished room <id>; SET NX

A lease can vanish while its driver lives: Redis restarted empty (no persistence), a Sentinel
failover took longer than the 3 s or promoted a replica that lacks the last writes (replication
is asynchronous), or the driver stalled past the 3 s. The driver takes it back if the snapshot is
still its own (or gone with Redis): nobody else drove the room meanwhile, so its memory is the
latest state. Others wait one watch round before they take over a room whose lease vanished
(unless it was handed back), so that the living driver gets there first.

The snapshot's age is measured with Redis' own TIME (one clock for every process), only to carry
an open question's remaining time over to the next driver; the game itself runs on the driver's
time.monotonic().
"""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from course_project.config import SENTINEL_KWARGS, config_get, redis_auth

LEASE_MS = 3000
SNAPSHOT_TTL_S = 6 * 3600
REDIS_MAX_CONNECTIONS = 100  # a process's connections for the game's keys (a blocking pool)

_clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}
_sentinels: dict[asyncio.AbstractEventLoop, Sentinel] = {}

# The lease KEYS[lease] is ARGV[owner]'s, or missing while the snapshot KEYS[state] is owner's
# (or missing): then owner takes it back. 1 if owner holds the lease now, 0 if someone else does.
_HOLD = """
local function hold(lease, state, owner, ms)
  local holder = redis.call('GET', lease)
  if holder == owner then
    redis.call('PEXPIRE', lease, ms)
    return 1
  end
  if holder then
    return 0
  end
  local last = redis.call('HGET', state, 'owner')
  if last and last ~= owner then
    return 0
  end
  redis.call('SET', lease, owner, 'PX', ms)
  return 2
end
"""
_SAVE = _HOLD + """
if ARGV[3] ~= '' and hold(KEYS[2], KEYS[1], ARGV[3], ARGV[4]) == 0 then
  return 0
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'saved_ms', t[1] * 1000 + math.floor(t[2] / 1000),
           'owner', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
_LOAD = """
local t = redis.call('TIME')
local v = redis.call('HMGET', KEYS[1], 'state', 'saved_ms')
return {v[1], v[2], t[1] * 1000 + math.floor(t[2] / 1000)}
"""
_RENEW = _HOLD + """
return hold(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
"""
# Taken (1) if nobody holds it and the room was handed back (snapshot owner '') or is ours;
# -1 if it looks orphaned (its last driver may still be alive): call again with force later.
_TAKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if ARGV[3] ~= '1' then
  local last = redis.call('HGET', KEYS[2], 'owner')
  if (not last) or (last ~= '' and last ~= ARGV[1]) then
    return -1
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('HSET', KEYS[2], 'owner', '')
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class SentinelBlockingConnectionPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """The master that Redis Sentinel names, through a pool that waits up to `timeout` for a free
    connection when `max_connections` are in use (as BlockingConnectionPool does) instead of
    raising. A connection to a master that died or was demoted fails (ConnectionError; READONLY
    becomes one); the next asks the sentinels again, which answer MasterNotFoundError (also a
    ConnectionError) until they have promoted a replica."""


def redis_get() -> aioredis.Redis:
    """One client per event loop (a client, like a pool, belongs to the loop it runs on): of
    QUIZ_REDIS_URL's server, or, with QUIZ_REDIS_SENTINELS, of the master that the sentinels
    name (the URL's database and password), with the same options."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        for old in [lp for lp in _clients if lp.is_closed()]:
            del _clients[old]
            _sentinels.pop(old, None)
        client = _clients[loop] = _client_new(loop)
    return client


def _client_new(loop: asyncio.AbstractEventLoop) -> aioredis.Redis:
    cfg = config_get()
    # A blocking pool: when a burst needs more than max_connections at once (hundreds of
    # players leaving together), callers wait for a free connection instead of failing
    # with MaxConnectionsError (redis-py's default pool allows 100, then raises).
    options = {"decode_responses": True, "socket_timeout": 5, "socket_connect_timeout": 5,
               "retry_on_timeout": True, "max_connections": REDIS_MAX_CONNECTIONS, "timeout": 5}
    if not cfg.redis_sentinels:
        pool = aioredis.BlockingConnectionPool.from_url(cfg.redis_url, **options)
        return aioredis.Redis.from_pool(pool)  # closes the pool with it
    sentinel = _sentinels[loop] = Sentinel(list(cfg.redis_sentinels),
                                           sentinel_kwargs=dict(SENTINEL_KWARGS))
    return sentinel.master_for(cfg.redis_master,
                               connection_pool_class=SentinelBlockingConnectionPool,
                               **redis_auth(cfg.redis_url), **options)


async def redis_close() -> None:
    loop = asyncio.get_running_loop()
    client, sentinel = _clients.pop(loop, None), _sentinels.pop(loop, None)
    if client is not None:
        await client.aclose()
    if sentinel is not None:  # its clients of the sentinels are not the master client's
        await sentinel.aclose()


def state_key(room_id: str) -> str:
    return f"quiz:room:{room_id}:state"


def lease_key(room_id: str) -> str:
    return f"quiz:room:{room_id}:driver"


def rematch_key(room_id: str) -> str:
    return f"quiz:room:{room_id}:rematch"


def proc_key(proc: str) -> str:
    return f"quiz:proc:{proc}"


async def snapshot_save(*, room_id: str, data: dict, owner: str = "") -> bool:
    """Store the snapshot; with `owner`, only while that inbox holds the room's lease (a driver
    that lost its lease without noticing yet cannot overwrite its successor's state), taking a
    vanished lease back as lease_renew does."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return bool(await redis_get().eval(_SAVE, 2, state_key(room_id), lease_key(room_id), text,
                                       SNAPSHOT_TTL_S, owner, LEASE_MS))


async def snapshot_load(*, room_id: str) -> tuple[dict, float] | None:
    """The snapshot and its age in seconds, or None."""
    text, saved_ms, now_ms = await redis_get().eval(_LOAD, 1, state_key(room_id))
    if text is None:
        return None
    age = max(0.0, (int(now_ms) - int(saved_ms or now_ms)) / 1000)
    return json.loads(text), age


async def lease_take(*, room_id: str, owner: str, force: bool = False) -> int:
    """1 taken, 0 someone holds it, -1 orphaned (take it only with force, one round later)."""
    return int(await redis_get().eval(_TAKE, 2, lease_key(room_id), state_key(room_id), owner,
                                      LEASE_MS, "1" if force else ""))


async def lease_renew(*, room_id: str, owner: str) -> int:
    """1 renewed, 2 taken back (it had vanished; save the snapshot now), 0 lost to another."""
    return int(await redis_get().eval(_RENEW, 2, lease_key(room_id), state_key(room_id), owner,
                                      LEASE_MS))


async def lease_release(*, room_id: str, owner: str) -> None:
    """Hand the room back: the next driver may take it at once."""
    await redis_get().eval(_RELEASE, 2, lease_key(room_id), state_key(room_id), owner)


async def lease_owner(*, room_id: str) -> str | None:
    return await redis_get().get(lease_key(room_id))


async def leases_owners(*, room_ids: list[str]) -> dict[str, str | None]:
    if not room_ids:
        return {}
    values = await redis_get().mget([lease_key(r) for r in room_ids])
    return dict(zip(room_ids, values, strict=True))


async def rematch_get(*, room_id: str) -> str | None:
    return await redis_get().get(rematch_key(room_id))


async def rematch_set(*, room_id: str, rematch_id: str) -> str:
    """Record `rematch_id` as the room's rematch unless one is recorded already: the one that
    holds now."""
    if await redis_get().set(rematch_key(room_id), rematch_id, nx=True, ex=SNAPSHOT_TTL_S):
        return rematch_id
    return await rematch_get(room_id=room_id) or rematch_id


async def proc_beat(*, proc: str) -> None:
    await redis_get().set(proc_key(proc), "1", px=LEASE_MS)


async def proc_forget(*, proc: str) -> None:
    await redis_get().delete(proc_key(proc))


async def procs_alive(*, procs: list[str]) -> set[str]:
    if not procs:
        return set()
    values = await redis_get().mget([proc_key(p) for p in procs])
    return {p for p, v in zip(procs, values, strict=True) if v is not None}
