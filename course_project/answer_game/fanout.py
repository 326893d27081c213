"""How a room's frames reach its sockets: per process, then straight onto each socket.

The driver knows who is in its room: every connection id names the process that holds the socket
(`<process inbox>/<channel>`). So it needs no channel-layer group. For each step it sorts the
frames by process (`frames_route`): the sockets of its own process it writes itself, and every
other process gets ONE channel-layer message for the whole step, which that process's hub writes
out to its own sockets the same way (`Hub.frames_deliver`).

So a frame costs no per-member queue, task wake-up or dispatch: the hub writes the sockets of its
process one after the other.

A socket write must never hold up the room. uvicorn's `send()` waits only while the socket's
write buffer is over its high-water mark (a client that stopped reading) and writes nothing before
that wait, so `texts_push` gives a run of writes STALL seconds, then cancels the one that waits
(nothing was sent) and hands that frame, and every later frame for that socket, to the consumer's
own queue (`Sink.backlog_put`), which its own task drains in order while the room goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from common.consumers import frame_text

from .rules import project_reveal

STALL = 0.05  # seconds a socket write may wait before the frame goes to the consumer's queue

# One frame for one process to write out (a list once it crossed the channel layer): (connection
# id, frame) for one socket, or ("", frame) for every socket of the room that the process holds.
Routed = tuple[str, dict]


# A connection, as the rules know it: "<process inbox>/<channel name>". Channel names carry no
# "/", so the process that holds a websocket is always readable: its hub's inbox channel, where
# frames for its sockets are sent, and whose connections are dropped together if it dies.
def conn_id(*, proc: str, channel: str) -> str:
    return f"{proc}/{channel}"


def conn_proc(conn: str) -> str:
    return conn.split("/", 1)[0]


def frames_route(events: Iterable, *, conns: Iterable[str]) -> dict[str, list[Routed]]:
    """Per process, in order, the frames of `events` it must write: a frame with a `conn` to the
    process of that connection, any other frame to every process that holds one of `conns` (the
    room's connections)."""
    procs = sorted({conn_proc(c) for c in conns})
    routes: dict[str, list[Routed]] = {}
    for ev in events:
        frame = ev.frame()
        if frame is None:
            continue
        conn = getattr(ev, "conn", None)
        if conn:
            routes.setdefault(conn_proc(conn), []).append((conn, frame))
        else:
            for proc in procs:
                routes.setdefault(proc, []).append(("", frame))
    return routes


class Sink(Protocol):
    """A socket the hub writes to (answer_game.consumers.GameConsumer)."""

    behind: int  # frames waiting in the consumer's own queue

    async def send_text(self, text: str) -> None: ...

    async def backlog_put(self, text: str) -> None: ...


class Seat(Protocol):
    user_id: int
    sink: Sink


def frames_texts(frames: Sequence[Routed], seats: Mapping[str, Seat]) -> list[tuple[Sink, str]]:
    """What to write where: each frame as JSON text, encoded once for the room, except a reveal,
    which each player gets with only their own points. `seats`: connection id -> local seat."""
    out: list[tuple[Sink, str]] = []
    for to, frame in frames:
        if to:
            seat = seats.get(to)
            if seat is not None:
                out.append((seat.sink, frame_text(frame)))
        elif frame["type"] == "reveal":
            out.extend((s.sink, frame_text(project_reveal(frame, user_id=s.user_id)))
                       for s in seats.values())
        else:
            text = frame_text(frame)
            out.extend((s.sink, text) for s in seats.values())
    return out


async def texts_push(pairs: Sequence[tuple[Sink, str]], *, stall: float = STALL) -> int:
    """Write each text to its socket, in order; a socket whose write stalls (or that is still
    behind) gets this and its later texts through its own queue. Returns how many went that way.

    One timeout covers the run of writes: a write that does not wait never yields to the event
    loop, so only a stalled one can be cancelled, and it is the one in hand."""
    later: list[tuple[Sink, str]] = []
    stalled: set[Sink] = set()
    i = 0
    while i < len(pairs):
        try:
            async with asyncio.timeout(stall):
                while i < len(pairs):
                    sink, text = pairs[i]
                    i += 1
                    if sink.behind or sink in stalled:
                        later.append((sink, text))
                    else:
                        await sink.send_text(text)
        except TimeoutError:
            sink, text = pairs[i - 1]
            stalled.add(sink)
            later.append((sink, text))
    for sink, text in later:
        await sink.backlog_put(text)
    return len(later)
