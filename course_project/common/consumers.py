"""What every websocket consumer here shares: accept with the ticket, JSON frames, error frames."""

from __future__ import annotations

import json
import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import WebsocketDenier
from django.conf import settings

log = logging.getLogger(__name__)

CLOSE_TOO_BIG = 1009


class TicketConsumer(AsyncWebsocketConsumer):
    """Accepts with the ticket the client offered as subprotocol (a browser that offered one fails
    the handshake if the server picks none); parses text frames as JSON objects."""

    async def accept_with_ticket(self) -> None:
        await self.accept(subprotocol=self.scope["ticket"])

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.WS_MAX_FRAME_BYTES:
            await self.close(code=CLOSE_TOO_BIG)
            return
        if text_data is None:
            await self.send_error("bad_json", "send JSON text frames, not binary ones")
            return
        try:
            data = json.loads(text_data)
        except ValueError:
            await self.send_error("bad_json", "the frame is not valid JSON")
            return
        if not isinstance(data, dict):
            await self.send_error("bad_json", "the frame must be a JSON object")
            return
        await self.receive_json(data)

    async def receive_json(self, data: dict[str, Any]) -> None:
        raise NotImplementedError

    async def send_json(self, data: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    async def send_error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})


class NoRouteDenier(WebsocketDenier):
    """The catch-all last route: without it URLRouter raises ValueError for an unknown path and
    uvicorn answers the handshake with a 500 and a traceback in the log."""

    async def connect(self) -> None:
        log.info("websocket refused: no route for path %r", self.scope.get("path"))
        await super().connect()
