"""A flooding client, run as its own process so that it does not steal the test's event loop:

    python -m tests.reliability.flooder URL TICKET SECONDS FRAME ORIGIN

For SECONDS it sends FRAME on a websocket as fast as it can; when the server closes the
connection it opens a new one and goes on, as a determined abuser would. Prints one JSON line:
frames sent, connections, the close codes, the codes of the error frames, how many chat
echoes of its own message came back, and how long its connections were open (the window in which
the server can have admitted what came back).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def one_connection(url: str, ticket: str, until: float, frame: str, origin: str,
                         received: list[dict]) -> tuple[int, int | None]:
    """Frames sent and the close code (None: still open when time was up)."""
    ws = await connect(url, subprotocols=[ticket], origin=origin, max_queue=None,
                       close_timeout=1)

    async def read() -> None:
        try:
            async for raw in ws:
                received.append(json.loads(raw))
        except ConnectionClosed:
            pass

    reader = asyncio.create_task(read())
    sent = 0
    try:
        while time.monotonic() < until:
            for _ in range(100):
                await ws.send(frame)
            sent += 100
            await asyncio.sleep(0)
    except ConnectionClosed:
        pass
    await asyncio.wait_for(asyncio.shield(reader), 1.0) if ws.state.name != "OPEN" else None
    code = ws.close_code if ws.state.name == "CLOSED" else None
    await ws.close()
    await reader
    return sent, code


async def flood(url: str, ticket: str, seconds: float, frame: str, origin: str) -> dict:
    received: list[dict] = []
    until = time.monotonic() + seconds
    sent, codes, open_seconds = 0, [], 0.0
    while time.monotonic() < until:
        began = time.monotonic()
        n, code = await one_connection(url, ticket, until, frame, origin, received)
        open_seconds += time.monotonic() - began
        sent += n
        codes.append(code)
    errors = [f.get("code") for f in received if f.get("type") == "error"]
    mine = json.loads(frame).get("message")
    echoes = sum(1 for f in received if mine is not None and f.get("message") == mine)
    return {"sent": sent, "connections": len(codes), "closed": codes, "errors": errors,
            "echoes": echoes, "open_seconds": round(open_seconds, 3)}


def main() -> None:
    url, ticket, seconds, frame, origin = sys.argv[1:6]
    print(json.dumps(asyncio.run(flood(url, ticket, float(seconds), frame, origin))))


if __name__ == "__main__":
    main()
