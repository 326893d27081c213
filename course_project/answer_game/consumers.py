"""The game's websocket: `ws/game/controller/<room_id>/<user_id>`. Thin on purpose: it checks who
connects, forwards commands to the room's driver (driver.py) and relays the driver's frames."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from common.consumers import TicketConsumer
from players.selectors import user_get

from . import rules
from .driver import Member, conn_id, group_name, hub
from .ratelimit import TokenBucket
from .selectors import room_get

RATE, BURST = 20.0, 40.0


class GameConsumer(TicketConsumer):
    joined = False

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        self.room_id, self.user_id = kwargs["room_id"], int(kwargs["user_id"])
        # Refuse before accept (uvicorn answers 403): someone else's seat, or no such room/user.
        if self.user_id != self.scope["user_id"]:
            await self.close()
            return
        room = await room_get(room_id=self.room_id)
        user = await user_get(user_id=self.user_id) if room else None
        if room is None or user is None:
            await self.close()
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.conn = conn_id(proc=hub.proc, channel=self.channel_name)
        self.member = Member(self.conn, self.user_id, user["nickname"],
                             watch=query.get("watch", [""])[0] in ("1", "true"))
        self.bucket = TokenBucket(rate=RATE, burst=BURST)
        self.limited_at = float("-inf")
        await self.channel_layer.group_add(group_name(self.room_id), self.channel_name)
        await self.accept_with_ticket()
        self.joined = True
        if not await hub.member_join(room_id=self.room_id, member=self.member):
            await self.send_error("unavailable", "the room's driver cannot be reached; retry")

    async def disconnect(self, code: int) -> None:
        if self.joined:
            self.joined = False
            await self.channel_layer.group_discard(group_name(self.room_id), self.channel_name)
            await hub.member_leave(room_id=self.room_id, conn=self.conn)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        now = time.monotonic()
        if not self.bucket.take(now=now):
            if now - self.limited_at >= 1.0:  # one error per flood (at most one a second)
                self.limited_at = now
                await self.send_error("rate_limited",
                                      f"more than {RATE:.0f} frames per second; frames dropped")
            return
        await super().receive(text_data=text_data, bytes_data=bytes_data)

    async def receive_json(self, data: dict[str, Any]) -> None:
        kind, conn = data.get("type"), self.conn
        if not isinstance(kind, str):
            await self.send_error("bad_field", "every frame needs a string 'type'")
            return
        if kind == "start":
            cmd: rules.Command = rules.Start(self.user_id, conn)
        elif kind == "next":
            cmd = rules.Next(self.user_id, conn)
        elif kind == "answer":
            cmd = rules.Answer(self.user_id, conn, data.get("question_id"), data.get("choice"))
        else:
            await self.send_error("unknown_type", "type must be start, answer or next")
            return
        if await hub.command(room_id=self.room_id, cmd=cmd) is None:
            await self.send_error("unavailable", "the room's driver cannot be reached; retry")

    async def game_frame(self, event: dict) -> None:
        """A frame for this connection only (state, answer_ack, error)."""
        await self.send_json(event["frame"])

    async def game_broadcast(self, event: dict) -> None:
        frame = event["frame"]
        if frame.get("type") == "reveal":
            frame = rules.project_reveal(frame, user_id=self.user_id)
        await self.send_json(frame)
