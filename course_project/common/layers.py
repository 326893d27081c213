"""A channel layer for rooms: RedisChannelLayer with one reader per process inbox.

channels_redis' RedisChannelLayer already stores one copy of a group message per process (the
member channels of a process share one sorted set, the "inbox"). What makes a busy room slow is
the receiving side: every consumer's `receive()` joins a lock dance (two new tasks per call, one
of them wins the lock and pops ONE message per BZPOPMIN round trip, plus a backup copy and a
clean-up round trip), and `group_send()` spends four round trips per message.

InboxChannelLayer keeps the storage, the message format, capacity, expiry and group membership
of RedisChannelLayer (so other processes and tools see the same keys), and changes three things:

- one long-lived reader task per inbox pops up to `batch` messages per round trip (BZMPOP,
  Redis 7; BZPOPMIN on older servers) and puts each into its channel's queue; a consumer's
  `receive()` is a plain `queue.get()`;
- `send()` and `group_send()` are one Lua script each (trim, capacity check, ZADD, EXPIRE) after
  `group_send()` read the members;
- a message for a channel of this very process (whose inbox this layer's own reader feeds, on the
  running loop) skips Redis and goes into the channel's queue, as the reader would have put it
  there one round trip later: serialized and deserialized all the same, so it is a copy and what
  msgpack refuses is refused. Group membership still lives in Redis, so a room spread over several
  processes sees one group.

What it gives up: a message the reader has popped when its task is cancelled (only at shutdown
or `flush()`) is lost, where the stock layer keeps a backup copy for a cancelled `receive()`.
Queues of channels nobody has received on for `expiry` seconds are dropped, as Redis drops their
messages. A consumer's queue holds at most `capacity` messages: a local `send()` to a full one
raises ChannelFull, and the reader makes room for a popped message by dropping the oldest (as the
stock layer's receive buffers do). Normal (non-"!") channels are received by the stock code and
sent with the same Lua script.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

from channels.exceptions import ChannelFull
from channels_redis.core import BoundedQueue, RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

# KEYS: channel keys. ARGV: one message per key, one capacity per key, now, expiry.
_DELIVER = """
local n = #KEYS
local now = tonumber(ARGV[2 * n + 1])
local expiry = tonumber(ARGV[2 * n + 2])
local over = 0
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, math.floor(now) - expiry)
    if redis.call('ZCARD', KEYS[i]) < tonumber(ARGV[n + i]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over = over + 1
    end
end
return over
"""

# KEYS[1]: group key. ARGV: oldest membership score to keep. Returns the members.
_MEMBERS = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""


class InboxChannelLayer(RedisChannelLayer):
    """RedisChannelLayer with batched, per-process delivery (see the module docstring)."""

    def __init__(self, *args: Any, batch: int = 64, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch = batch
        self._inboxes: dict[str, BoundedQueue] = {}
        self._touched: dict[str, float] = {}
        self._waiting: collections.Counter[str] = collections.Counter()
        self._readers: dict[str, asyncio.Task] = {}
        self._reader_loop: asyncio.AbstractEventLoop | None = None
        self._bzmpop = True  # False once the server said it has no BZMPOP (Redis < 7)
        self._gc_at = 0.0

    # -- sending ------------------------------------------------------------------------------

    async def send(self, channel: str, message: dict) -> None:
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        queue = self._local_queue(channel)
        if queue is not None:
            if queue.full():
                raise ChannelFull()
            queue.put_nowait(self.deserialize(self.serialize(message)))
            self._gc()
            return
        if "!" in channel:
            message = dict(message, __asgi_channel__=channel)
            index = self.consistent_hash(self.non_local_name(channel))  # where receive() reads
        else:
            index = next(self._send_index_generator)
        key = self.prefix + self.non_local_name(channel)
        over = await self.connection(index).eval(
            _DELIVER, 1, key, self.serialize(message), self.get_capacity(channel),
            time.time(), int(self.expiry),
        )  # fmt: skip
        if over:
            raise ChannelFull()

    async def group_send(self, group: str, message: dict) -> None:
        assert self.require_valid_group_name(group), "Group name not valid"
        conn = self.connection(self.consistent_hash(group))
        members = await conn.eval(
            _MEMBERS, 1, self._group_key(group), int(time.time()) - self.group_expiry
        )
        channels = [m.decode() for m in members]
        queues = {ch: q for ch in channels if (q := self._local_queue(ch)) is not None}
        if queues:
            copy = self.deserialize(self.serialize(message))  # shared, as one popped from Redis is
            full = 0
            for queue in queues.values():
                if queue.full():
                    full += 1
                else:
                    queue.put_nowait(copy)
            if full:
                log.info("%s of %s channels over capacity in group %s", full, len(queues), group)
            self._gc()
            channels = [ch for ch in channels if ch not in queues]
        by_index, messages, capacities = self._map_channel_keys_to_connection(channels, message)
        for index, keys in by_index.items():
            over = await self.connection(index).eval(
                _DELIVER, len(keys), *keys, *(messages[k] for k in keys),
                *(capacities[k] for k in keys), time.time(), int(self.expiry),
            )  # fmt: skip
            if over:
                log.info("%s of %s channels over capacity in group %s", over, len(keys), group)

    # -- receiving ----------------------------------------------------------------------------

    async def receive(self, channel: str) -> dict:
        if channel not in self._inboxes:  # validate once per channel, not once per message
            if "!" not in channel:
                return await super().receive(channel)
            assert self.require_valid_channel_name(channel), "Channel name not valid"
            assert self.non_local_name(channel).endswith(self.client_prefix + "!"), (
                "Wrong client prefix"
            )
        self._reader_ensure(self.non_local_name(channel))
        queue = self._inbox(channel)
        self._waiting[channel] += 1
        try:
            return await queue.get()
        finally:
            self._waiting[channel] -= 1
            if not self._waiting[channel]:
                del self._waiting[channel]
            self._touched[channel] = time.monotonic()

    def _local_queue(self, channel: str) -> BoundedQueue | None:
        """The queue of `channel` if this layer's own reader feeds its inbox on this loop."""
        if "!" not in channel or self._reader_loop is not asyncio.get_running_loop():
            return None
        reader = self._readers.get(self.non_local_name(channel))
        if reader is None or reader.done():
            return None
        return self._inbox(channel)

    def _inbox(self, channel: str) -> BoundedQueue:
        queue = self._inboxes.get(channel)
        if queue is None:
            queue = self._inboxes[channel] = BoundedQueue(self.capacity)
            self._touched[channel] = time.monotonic()
        return queue

    def _reader_ensure(self, inbox_name: str) -> None:
        loop = asyncio.get_running_loop()
        if self._reader_loop is not loop:
            old = self._reader_loop
            if old is not None and old.is_running() and not old.is_closed():
                raise RuntimeError("Two event loops are trying to receive() on one channel layer")
            self._loop_moved()
            self._reader_loop = loop
        task = self._readers.get(inbox_name)
        if task is None or task.done():
            self._readers[inbox_name] = loop.create_task(self._read_loop(inbox_name))

    def _loop_moved(self) -> None:
        """A new event loop receives: queues and readers of the old (stopped) one are unusable."""
        self._readers.clear()
        moved = {}
        for channel, old in self._inboxes.items():
            queue = moved[channel] = BoundedQueue(self.capacity)
            while not old.empty():
                queue.put_nowait(old.get_nowait())
        self._inboxes = moved

    async def _read_loop(self, inbox_name: str) -> None:
        """Pop the inbox's messages into their channels' queues, for as long as the layer lives.
        A failed pop (Redis restarting or failing over, a dropped socket) is tried again after
        0.1 s, doubling up to 1 s: the inbox is read again at most a second after Redis (or the
        replica that Redis Sentinel promoted) answers."""
        key = self.prefix + inbox_name
        index = self.consistent_hash(inbox_name)
        pause = 0.1
        while True:
            try:
                popped = await self._pop(index, key)
                pause = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting, a dropped socket: retry, never die
                log.warning("channel layer reader for %s: %r; retrying in %.1fs", key, exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            for raw in popped:
                self._deliver(inbox_name, raw)
            self._gc()

    async def _pop(self, index: int, key: str) -> list[bytes]:
        conn = self.connection(index)
        if self._bzmpop:
            try:
                got = await conn.bzmpop(self.brpop_timeout, 1, [key], min=True, count=self.batch)
            except ResponseError as exc:
                if "unknown command" not in str(exc).lower():
                    raise
                self._bzmpop = False
            else:
                return [member for member, _ in got[1]] if got else []
        got = await conn.bzpopmin(key, timeout=self.brpop_timeout)
        if got is None:
            return []
        rest = await conn.zpopmin(key, self.batch - 1)
        return [got[1], *(member for member, _ in rest)]

    def _deliver(self, inbox_name: str, raw: bytes) -> None:
        message = self.deserialize(raw)
        target = message.pop("__asgi_channel__", None)
        if target is None:
            log.warning("dropped a message without a channel in inbox %s", inbox_name)
            return
        for channel in target if isinstance(target, list) else [target]:
            self._inbox(channel).put_nowait(message)

    def _gc(self) -> None:
        """Drop the queues of channels nobody received on for `expiry` seconds."""
        now = time.monotonic()
        if now < self._gc_at:
            return
        self._gc_at = now + self.expiry
        stale = [
            ch
            for ch, seen in self._touched.items()
            if now - seen > self.expiry and ch not in self._waiting
        ]
        for channel in stale:
            self._inboxes.pop(channel, None)
            self._touched.pop(channel, None)

    # -- lifecycle ----------------------------------------------------------------------------

    async def _readers_stop(self) -> None:
        readers = [t for t in self._readers.values() if not t.done()]
        self._readers.clear()
        current = asyncio.get_running_loop()
        for task in readers:
            task.cancel()
        await asyncio.gather(
            *(t for t in readers if t.get_loop() is current), return_exceptions=True
        )

    async def close_pools(self) -> None:
        await self._readers_stop()
        await super().close_pools()

    async def flush(self) -> None:
        await self._readers_stop()
        self._inboxes.clear()
        self._touched.clear()
        await super().flush()


class PubSubChannelLayer(RedisPubSubChannelLayer):
    """channels_redis' RedisPubSubChannelLayer, plus the `connection(index)` that the health check
    pings. Kept for comparison (QUIZ_CHANNEL_LAYER=pubsub): at-most-once, groups in memory."""

    def connection(self, index: int):
        shard = self._get_layer()._shards[index]
        shard._ensure_redis()
        return shard._redis
