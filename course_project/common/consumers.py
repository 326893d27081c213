"""What every websocket consumer here shares: accept with the ticket, JSON frames, error frames,
and a size limit per frame.

    class ChatConsumer(TicketConsumer):
        async def connect(self): ...; await self.accept_with_ticket()
        async def receive_json(self, data): ...   # a JSON object; bad frames got an error frame

common/resilience.py builds on it: surviving a Redis outage, a rate limit, a cheaper loop.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import WebsocketDenier
from django.conf import settings

from .http import json_encodable

log = logging.getLogger(__name__)

CLOSE_TOO_BIG = 1009
# What sending raises once the connection is gone but its disconnect event is not handled yet:
# uvicorn's ClientDisconnected (an OSError) if the client left, and a RuntimeError ("Unexpected
# ASGI message 'websocket.send', after sending 'websocket.close'") if uvicorn closed it itself
# (a protocol error such as invalid UTF-8 or a frame over --ws-max-size, a keepalive timeout).
CONNECTION_GONE = (OSError, RuntimeError)


class FrameError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def frame_text(data: dict[str, Any]) -> str:
    """A frame as the JSON text that goes on the wire (one encoding for every sender)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def frame_parse(text: str) -> dict[str, Any]:
    """A text frame as a JSON object, or FrameError("bad_json")."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the limit
        raise FrameError("bad_json", "the frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise FrameError("bad_json", "the frame must be a JSON object")
    # "\ud800" is valid JSON but no character: it could not be sent on as UTF-8 (msgpack, the
    # websocket), so it would fail later, far from here.
    if "\\u" in text and not json_encodable(data):
        raise FrameError("bad_json", "the frame has an unpaired surrogate (\\ud800-\\udfff)")
    return data


class TicketConsumer(AsyncWebsocketConsumer):
    """Accepts with the ticket the client offered as subprotocol (a browser that offered one fails
    the handshake if the server picks none); hands each text frame to `receive_json` as a JSON
    object, and answers a frame that is not one with an `error` frame; closes with 1009 on a
    frame over WS_MAX_FRAME_BYTES. After its own close it neither reads nor sends."""

    closing = False

    async def accept_with_ticket(self) -> None:
        await self.accept(subprotocol=self.scope["ticket"])

    # --- frames in ---

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:  # frames that were queued before our close frame went out
            return
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.WS_MAX_FRAME_BYTES:
            await self.close(code=CLOSE_TOO_BIG)
            return
        if text_data is None:
            await self.send_error("bad_json", "send JSON text frames, not binary ones")
            return
        try:
            data = frame_parse(text_data)
        except FrameError as exc:
            await self.send_error(exc.code, exc.message)
            return
        await self.receive_json(data)

    async def receive_json(self, data: dict[str, Any]) -> None:
        raise NotImplementedError

    # --- frames out ---

    async def send_json(self, data: dict[str, Any]) -> None:
        await self.send_text(frame_text(data))

    async def send_text(self, text: str) -> None:
        """A frame already encoded with frame_text (a broadcast is encoded once, not per member)."""
        if self.closing:
            return
        try:
            await self.send(text_data=text)
        except CONNECTION_GONE:  # the disconnect event is on its way: stop sending
            self.closing = True

    async def send_error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        if self.closing:
            return
        self.closing = True
        try:
            await super().close(code=code, reason=reason)
        except CONNECTION_GONE:
            pass


class NoRouteDenier(WebsocketDenier):
    """The catch-all last route: without it URLRouter raises ValueError for an unknown path and
    uvicorn answers the handshake with a 500 and a traceback in the log."""

    async def connect(self) -> None:
        log.info("websocket refused: no route for path %r", self.scope.get("path"))
        await super().connect()
