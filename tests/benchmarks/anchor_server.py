"""The anchor: a bare `websockets` server doing what the chat route does, without Django, Channels
or Redis. Rooms by path; a text frame `{"message": str}` is answered, to everyone in the room
(sender included), with the same frame the project sends. It accepts the offered subprotocol, as
the project accepts the ticket.

    python tests/benchmarks/anchor_server.py --port 8301 [--no-deflate]

Prints `ready <pid>` once it listens; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from collections import defaultdict

from websockets.asyncio.server import ServerConnection, broadcast, serve

ROOMS: dict[str, set[ServerConnection]] = defaultdict(set)


def _subprotocol(connection: ServerConnection, offered: list[str]) -> str | None:
    return offered[0] if offered else None


async def _handler(ws: ServerConnection) -> None:
    path = ws.request.path
    room = path.rstrip("/").rsplit("/", 1)[-1]
    members = ROOMS[path]
    members.add(ws)
    try:
        async for frame in ws:
            data = json.loads(frame)
            out = {"type": "message", "message": data["message"], "user_id": 0, "room": room}
            broadcast(members, json.dumps(out, ensure_ascii=False, separators=(",", ":")))
    finally:
        members.discard(ws)


async def main(host: str, port: int, deflate: bool) -> None:
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    # permessage-deflate as uvicorn's sansio server sets it up, unless the project turns it off.
    compression = "deflate" if deflate else None
    async with serve(
        _handler, host, port, select_subprotocol=_subprotocol, compression=compression,
        backlog=2048,
    ):  # fmt: skip
        print(f"ready {os.getpid()}", flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8301)
    parser.add_argument("--no-deflate", action="store_true", help="refuse permessage-deflate")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port, not args.no_deflate))
