"""A small client for the live server: JSON over HTTP and websockets with a ticket.

Used by the notebooks, the tests and the benchmarks, so each speaks the wire protocol the same way.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from course_project.config import config_get


@dataclass
class HttpReply:
    status: int
    body: Any
    content_type: str

    def __repr__(self) -> str:
        return f"HttpReply({self.status}, {self.body!r})"


def http(
    method: str,
    path: str,
    body: Any = None,
    *,
    ticket: str | None = None,
    base: str | None = None,
    raw: bytes | None = None,
    timeout: float = 10,
) -> HttpReply:
    url = (base or config_get().server_url) + path
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Content-Type": "application/json"}
    if ticket:
        headers["Authorization"] = f"Bearer {ticket}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            status, payload, ctype = reply.status, reply.read(), reply.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        status, payload, ctype = exc.code, exc.read(), exc.headers.get_content_type()
    if ctype == "application/json":
        return HttpReply(status, json.loads(payload), ctype)
    return HttpReply(status, payload.decode("utf-8", "replace"), ctype)


def player_new(nickname: str, *, base: str | None = None) -> dict:
    """POST /api/players: a new user with a ticket."""
    reply = http("POST", "/api/players", {"nickname": nickname}, base=base)
    if reply.status != 201:
        raise RuntimeError(f"player_new failed: {reply}")
    return reply.body


def origin_default(base: str | None = None) -> str:
    return base or config_get().server_url


async def ws_open(
    path: str, ticket: str | None, *, base: str | None = None, origin: str | None = None, **kw
) -> ClientConnection:
    """Open a websocket to the live server, offering the ticket as subprotocol.
    Pass origin="" to send no Origin header at all."""
    http_base = base or config_get().server_url
    url = "ws" + http_base.removeprefix("http") + path
    origin = origin_default(base) if origin is None else origin
    kw.setdefault("open_timeout", 10)
    return await connect(
        url, subprotocols=[ticket] if ticket else None, origin=origin or None, **kw
    )


async def ws_recv_json(ws: ClientConnection, timeout: float = 5.0) -> dict:
    import asyncio

    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def ws_send_json(ws: ClientConnection, data: dict) -> None:
    await ws.send(json.dumps(data, ensure_ascii=False))
