"""The game's websocket: `ws/game/controller/<room_id>/<user_id>`. Thin on purpose: it checks who
connects and forwards commands to the room's driver (driver.py). The driver's frames are written to
the socket by this process's hub (fanout.py), not relayed through this consumer, unless the socket
fell behind: then they wait in this consumer's own channel, which it drains in order."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from channels.exceptions import ChannelFull

from common.dbexecute import DB_OUTAGE_ERRORS
from common.resilience import ResilientConsumer, memberships, outage_warn
from players.selectors import user_get

from . import rules
from .driver import Member, hub
from .fanout import conn_id
from .selectors import room_get

log = logging.getLogger(__name__)


def wire_value(value: Any) -> Any:
    """A field as the rules need to see it. They only ask whether it is an integer (and which);
    an array or object is not, so it travels as a short placeholder instead of arbitrary
    nesting that the channel layer's msgpack might not take."""
    if isinstance(value, list | dict):
        return f"<{type(value).__name__}>"
    return value


class GameConsumer(ResilientConsumer):
    joined = False
    behind = 0  # frames waiting in this consumer's channel (see backlog_put)
    dropped = 0  # frames dropped because that channel was full

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        self.room_id, self.user_id = kwargs["room_id"], int(kwargs["user_id"])
        # Refuse before accept (uvicorn answers 403): someone else's seat, or no such room/user.
        if self.user_id != self.scope["user_id"]:
            await self.close()
            return
        try:
            room = await room_get(room_id=self.room_id)
            user = await user_get(user_id=self.user_id) if room else None
        except DB_OUTAGE_ERRORS as exc:
            outage_warn("game connect: MySQL", exc)
            await self.refuse_unavailable("the game database cannot be reached; retry")
            return
        if room is None or user is None:
            await self.close()
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.conn = conn_id(proc=hub.proc, channel=self.channel_name)
        self.member = Member(self.conn, self.user_id, user["nickname"],
                             watch=query.get("watch", [""])[0] in ("1", "true"), sink=self)
        memberships.keep(self)  # no group to join, but a Redis restart must still be noticed
        await self.accept_with_ticket()
        self.joined = True
        if not await hub.member_join(room_id=self.room_id, member=self.member):
            await self.send_error("unavailable", "the room's driver cannot be reached; retry")

    async def disconnect(self, code: int) -> None:
        if self.joined:
            self.joined = False
            await hub.member_leave(room_id=self.room_id, conn=self.conn)

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
            cmd = rules.Answer(self.user_id, conn, wire_value(data.get("question_id")),
                               wire_value(data.get("choice")))
        else:
            await self.send_error("unknown_type", "type must be start, answer or next")
            return
        if await hub.command(room_id=self.room_id, cmd=cmd) is None:
            await self.send_error("unavailable", "the room's driver cannot be reached; retry")

    # --- frames out, when this socket fell behind (fanout.texts_push) ---

    async def backlog_put(self, text: str) -> None:
        """Queue a frame in this consumer's own channel: its task writes it after the ones before
        it, however long the socket takes, and the room does not wait. A full channel (the
        layer's capacity) drops the frame: the client is far behind, and it gets a `state`
        frame when it reconnects."""
        try:
            await self.channel_layer.send(self.channel_name, {"type": "game.frame", "text": text})
        except ChannelFull:
            if not self.dropped:
                log.warning("room %s: the socket of user %s is %d frames behind; dropping frames",
                            self.room_id, self.user_id, self.behind)
            self.dropped += 1
            return
        self.behind += 1

    async def game_frame(self, event: dict) -> None:
        try:
            await self.send_text(event["text"])
        finally:
            self.behind -= 1
