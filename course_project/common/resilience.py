"""What keeps the project's consumers up through a Redis outage and a flooding client, and makes
their loop cheaper than Channels' own: ResilientConsumer, a TicketConsumer (common/consumers.py)
with its own `__call__`, and the process's `memberships`.

A Redis restart hurts a Channels app twice. The stock layer's `receive()` raises ConnectionError
into Channels' dispatch loop, which ends the consumer and its websocket; and Redis comes back
empty, so every group membership is gone and broadcasts reach nobody. ResilientConsumer waits out
the outage instead of dying (`_layer_receive`), and `memberships` puts this process's memberships
back when it finds that Redis lost them. tests/reliability and tests/benchmarks measure all of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer
from redis.exceptions import RedisError

from .consumers import TicketConsumer

log = logging.getLogger(__name__)

# What a Redis (or network) outage raises; anything else is a bug and may end the consumer.
OUTAGE_ERRORS = (RedisError, OSError, TimeoutError)


def outage_warn(what: str, exc: BaseException, *, every: float = 5.0,
                logger: logging.Logger = log) -> None:
    """One WARNING line (no traceback) per `what` every few seconds: an outage is expected
    weather, and a thousand consumers waiting it out must not flood the log."""
    now = time.monotonic()
    if now - _warned.get(what, float("-inf")) >= every:
        if len(_warned) > 1000:  # `what` may name a room: keep the memory bounded
            _warned.clear()
        _warned[what] = now
        logger.warning("%s: %s (%s); retrying", what, type(exc).__name__, exc)


_warned: dict[str, float] = {}


@dataclass
class TokenBucket:
    """`rate` frames per second on average, bursts up to `burst`."""

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


class ResilientConsumer(TicketConsumer):
    """A TicketConsumer that drops frames over `rate` per second (one `rate_limited` error a
    second tells the client), waits out a Redis outage, and keeps its group memberships where
    `memberships` can restore them.

    A flooding connection is not closed: uvicorn stops reading a connection while frames it has
    queued wait for the app, so an open flood is paced by this consumer; after a close, uvicorn
    reads (and discards) whatever the client still sends at full speed, which costs the other
    connections more (tests/reliability/test_abuse.py measures a flood)."""

    rate: float | None = 20.0
    burst: float = 40.0
    closing = False
    ended = False  # disconnect() has run

    async def __call__(self, scope, receive, send) -> None:
        """Channels' AsyncConsumer.__call__, with a channel-layer receive that waits out a Redis
        outage, this consumer's group memberships kept in `memberships` while it lives, and a
        cheaper loop than Channels' `await_many_dispatch` (see `_pump`). A handler that raises
        ends the consumer, and the exception reaches the server (uvicorn logs it and drops the
        connection); `disconnect()` still runs, so a seat or a group never outlives its socket."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = self._layer_receive
        self.base_send = send
        self.groups_joined: set[str] = set()
        self.bucket = TokenBucket(rate=self.rate or 0.0, burst=self.burst)
        self.limited_at = float("-inf")
        turn = asyncio.Lock()
        pumps = [asyncio.create_task(self._pump(receive, turn)),
                 asyncio.create_task(self._pump(self._layer_receive, turn))]
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # StopConsumer (a disconnect) or a handler's exception
        except StopConsumer:
            pass
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            memberships.forget(self)
            if not self.ended:
                await self._disconnect_after_crash()

    async def _disconnect_after_crash(self) -> None:
        self.ended = True
        try:
            await self.disconnect(1011)
        except Exception:
            log.exception("disconnect() after a failed handler failed too")

    async def websocket_disconnect(self, message: dict) -> None:
        self.ended = True
        await super().websocket_disconnect(message)

    async def _pump(self, source: Callable[[], Awaitable[dict]], turn: asyncio.Lock) -> None:
        """Receive from one source (the websocket or the channel layer) and dispatch, forever.
        `turn` runs the handlers one at a time, as Channels' `await_many_dispatch` does; unlike
        it, a message costs no new task and no `asyncio.wait()` (bench_broadcast.py measures
        the difference). The websocket's next frame is read only once the last one was handled,
        so a flooding client is paced by its own handler."""
        while True:
            message = await source()
            async with turn:
                await self.dispatch(message)

    async def _layer_receive(self) -> dict:
        pause = 0.1
        while True:
            try:
                return await self.channel_layer.receive(self.channel_name)
            except OUTAGE_ERRORS as exc:
                outage_warn("channel layer receive", exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)

    # --- groups ---

    async def group_join(self, group: str) -> None:
        """group_add, remembered so that `memberships` can restore it. Raises on an outage."""
        memberships.keep(self)
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.add(group)

    async def group_leave(self, group: str) -> None:
        """group_discard; never raises (a membership Redis could not drop expires anyway)."""
        self.groups_joined.discard(group)
        try:
            await self.channel_layer.group_discard(group, self.channel_name)
        except OUTAGE_ERRORS as exc:
            outage_warn("group_discard", exc)

    # --- handshake ---

    async def refuse_unavailable(self, message: str) -> None:
        """Refuse the handshake with HTTP 503 and a JSON body (a server-side outage, unlike the
        403 of a bad ticket), where the server supports it; else a plain refusal (403)."""
        if "websocket.http.response" not in self.scope.get("extensions", {}):
            await self.close()
            return
        self.closing = True
        body = json.dumps({"error": "unavailable", "message": message}).encode()
        await self.base_send({"type": "websocket.http.response.start", "status": 503,
                              "headers": [(b"content-type", b"application/json")]})
        await self.base_send({"type": "websocket.http.response.body", "body": body})

    # --- frames in ---

    async def dispatch(self, message: dict) -> None:
        """Hand `message` to its handler, or drop it: a websocket frame over the rate, or one
        that arrives after our close, is dropped, and the event loop is yielded once (uvicorn
        queues every frame of a read at once, and a queue that is never empty never suspends
        this pump, so a flood's backlog would otherwise hold every other connection up).

        Unlike Channels' dispatch, this does not run `aclose_old_connections()` in Django's sync
        thread before each message: these consumers use the aiomysql pools only. A subclass that
        calls the async ORM (`aget()`, ...) must `await aclose_old_connections()` (channels.db)
        itself first, or wrap its ORM code in `database_sync_to_async` (which closes stale
        connections around each call); else its connection outlives CONN_MAX_AGE until MySQL
        drops it."""
        if message["type"] == "websocket.receive" and not await self._admit():
            await asyncio.sleep(0)
            return
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def _admit(self) -> bool:
        if self.closing:  # frames that were queued before our close frame went out
            return False
        if not self.rate or self.bucket.take(now=time.monotonic()):
            return True
        now = time.monotonic()
        if now - self.limited_at >= 1.0:  # one error per flood (at most one a second)
            self.limited_at = now
            await self.send_error(
                "rate_limited", f"more than {self.rate:.0f} frames per second; frames dropped")
        return False


class Memberships:
    """This process's group memberships, put back when Redis may have lost them.

    Once a second it refreshes the TTL of a marker key that it wrote when it last added every
    membership. When the marker is missing (Redis restarted empty or was flushed), or when a
    check failed (Redis was unreachable: a restart, or a Sentinel failover whose promoted replica
    may lack the old master's last writes, and whose outage lost the messages sent meanwhile),
    the next check that succeeds writes the marker, group_adds every membership of every live
    consumer again (idempotent), then runs the `restored` hooks (the game driver saves its rooms
    and re-syncs their members). Until the hooks have all run, every check tries again. Every
    half `group_expiry` it also adds them again, so long-lived rooms outlive the layer's expiry.
    The task ends when no consumer is left, and starts again with the next one.
    """

    CHECK_EVERY = 1.0
    MARKER_TTL = 60

    def __init__(self) -> None:
        self.consumers: weakref.WeakSet[ResilientConsumer] = weakref.WeakSet()
        self.task: asyncio.Task | None = None
        self.marker = f"quiz-memberships:{secrets.token_hex(6)}"
        self.marked = False  # the marker was written once: a missing one now means a loss
        self.added_at = float("-inf")
        self.restored: list[Callable[[], Awaitable[None]]] = []
        self.lost: str | None = None  # why Redis may have lost our state, until restored

    def keep(self, consumer: ResilientConsumer) -> None:
        self.consumers.add(consumer)
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._run(), name="quiz-memberships")

    def forget(self, consumer: ResilientConsumer) -> None:
        self.consumers.discard(consumer)

    async def _run(self) -> None:
        while self.consumers:
            try:
                await self.check()
            except OUTAGE_ERRORS as exc:
                outage_warn("group memberships check", exc)
            await asyncio.sleep(self.CHECK_EVERY)
        # The marker expires while nobody checks it: no loss to report, nobody to restore.
        self.marked, self.lost = False, None

    async def check(self) -> bool:
        """Restore the memberships if Redis may have lost them; True if it did. Raises what an
        outage raises, and then restores at the next check that succeeds."""
        try:
            return await self._check()
        except OUTAGE_ERRORS:
            self.lost = self.lost or "was unreachable"
            raise

    async def _check(self) -> bool:
        layer = get_channel_layer()
        if not hasattr(layer, "connection"):
            return False  # an in-memory layer: nothing to lose
        conns = [layer.connection(i) for i in range(getattr(layer, "ring_size", 1))]
        key = f"{layer.prefix}:{self.marker}"
        present = [bool(await conn.expire(key, self.MARKER_TTL)) for conn in conns]
        if self.marked and not all(present):
            self.lost = "restarted empty"
        renew = time.monotonic() - self.added_at > getattr(layer, "group_expiry", 86400) / 2
        if all(present) and not renew and self.lost is None:
            return False
        for conn in conns:
            await conn.set(key, "1", ex=self.MARKER_TTL)
        count = await self._add_all(layer)
        self.marked = True
        if self.lost is None:
            return False
        log.warning("channel layer: Redis %s; %d group memberships of this process added again",
                    self.lost, count)
        for hook in self.restored:
            await hook()
        self.lost = None
        return True

    async def _add_all(self, layer) -> int:
        count = 0
        for consumer in list(self.consumers):
            for group in list(consumer.groups_joined):
                await layer.group_add(group, consumer.channel_name)
                count += 1
        self.added_at = time.monotonic()
        return count


memberships = Memberships()
