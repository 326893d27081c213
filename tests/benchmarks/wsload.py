"""The load side: many websocket clients in one asyncio process, tickets, and broadcast rounds.

One process drives every client, so on a 2-core machine the load generator competes with the
server (and Redis) for CPU: absolute figures include that, the ratios less so, since the anchor
is driven by the same client code.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection

from workbook.chapters.client import ws_open


def tickets_issue(user_ids: Sequence[int]) -> list[str]:
    """Tickets signed with the project's key, as POST /api/players would hand out (no DB rows)."""
    import django

    django.setup()
    from common.tickets import ticket_issue

    return [ticket_issue(user_id=uid) for uid in user_ids]


@dataclass
class Opened:
    conns: list[ClientConnection]
    handshake_s: list[float]
    wall_s: float

    @property
    def deflate(self) -> bool:
        """Whether the server accepted permessage-deflate (the client always offers it, as
        browsers do)."""
        return bool(self.conns and self.conns[0].protocol.extensions)


async def clients_open(
    base: str, paths: Sequence[str], tickets: Sequence[str], *, in_flight: int = 64
) -> Opened:
    """Open one websocket per (path, ticket), at most `in_flight` handshakes at a time."""
    gate = asyncio.Semaphore(in_flight)
    times: list[float] = []

    async def one(path: str, ticket: str) -> ClientConnection:
        async with gate:
            t0 = time.perf_counter()
            ws = await ws_open(path, ticket, base=base, open_timeout=30, max_queue=64)
            times.append(time.perf_counter() - t0)
            return ws

    started = time.perf_counter()
    results = await asyncio.gather(
        *(one(p, t) for p, t in zip(paths, tickets, strict=True)), return_exceptions=True
    )
    wall = time.perf_counter() - started
    conns = [r for r in results if isinstance(r, ClientConnection)]
    errors = [r for r in results if not isinstance(r, ClientConnection)]
    if errors:
        await clients_close(conns)
        raise RuntimeError(f"{len(errors)} of {len(paths)} handshakes failed: {errors[0]!r}")
    return Opened(conns, times, wall)


async def clients_close(conns: Sequence[ClientConnection], *, in_flight: int = 200) -> None:
    gate = asyncio.Semaphore(in_flight)

    async def one(ws: ClientConnection) -> None:
        async with gate:
            try:
                await asyncio.wait_for(ws.close(), 10)
            except (TimeoutError, OSError):
                pass

    await asyncio.gather(*(one(ws) for ws in conns))


@dataclass
class Room:
    """Clients in one room: one sends, every member (sender included) must receive the frame.
    The sender changes every round, as in a room where everyone talks (and so that no client
    runs into the consumers' per-connection rate limit)."""

    conns: list[ClientConnection]
    lost: int = 0
    rounds: int = 0
    _expect: str | None = None
    _count: int = 0
    _done: asyncio.Future | None = None
    _readers: list[asyncio.Task] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._readers = [asyncio.create_task(self._read(ws)) for ws in self.conns]

    @property
    def deflate(self) -> bool:
        return bool(self.conns and self.conns[0].protocol.extensions)

    async def _read(self, ws: ClientConnection) -> None:
        async for frame in ws:
            if json.loads(frame).get("message") != self._expect:
                continue
            self._count += 1
            if self._count == len(self.conns) and self._done and not self._done.done():
                self._done.set_result(time.perf_counter())

    async def round(self, tag: str, *, timeout: float = 5.0) -> float | None:
        """Seconds from the send until the last member received it; None if it timed out."""
        self._expect, self._count = tag, 0
        self._done = asyncio.get_running_loop().create_future()
        sender = self.conns[self.rounds % len(self.conns)]
        self.rounds += 1
        started = time.perf_counter()
        await sender.send(json.dumps({"message": tag}))
        try:
            return await asyncio.wait_for(self._done, timeout) - started
        except TimeoutError:
            self.lost += 1
            return None
        finally:
            self._expect = None

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await clients_close(self.conns)
