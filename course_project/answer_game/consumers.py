"""The game's websocket: `ws/game/controller/<room_id>/<user_id>`. Thin on purpose: it checks who
connects, forwards commands to the room's driver (driver.py) and relays the driver's frames."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from common.consumers import OUTAGE_ERRORS, TicketConsumer, outage_warn
from common.dbexecute import DB_OUTAGE_ERRORS
from players.selectors import user_get

from . import rules
from .driver import Member, conn_id, group_name, hub
from .selectors import room_get


def wire_value(value: Any) -> Any:
    """A field as the rules need to see it. They only ask whether it is an integer (and which);
    an array or object is not, so it travels as a short placeholder instead of arbitrary
    nesting that the channel layer's msgpack might not take."""
    if isinstance(value, list | dict):
        return f"<{type(value).__name__}>"
    return value


class GameConsumer(TicketConsumer):
    joined = False

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
                             watch=query.get("watch", [""])[0] in ("1", "true"))
        try:
            await self.group_join(group_name(self.room_id))
        except OUTAGE_ERRORS as exc:
            outage_warn("game connect: channel layer", exc)
            await self.refuse_unavailable("the game cannot reach Redis; retry in a moment")
            return
        await self.accept_with_ticket()
        self.joined = True
        if not await hub.member_join(room_id=self.room_id, member=self.member):
            await self.send_error("unavailable", "the room's driver cannot be reached; retry")

    async def disconnect(self, code: int) -> None:
        if self.joined:
            self.joined = False
            await self.group_leave(group_name(self.room_id))
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

    async def game_frame(self, event: dict) -> None:
        """A frame for this connection only (state, answer_ack, error)."""
        await self.send_json(event["frame"])

    async def game_broadcast(self, event: dict) -> None:
        """A frame for the whole room: JSON text the driver encoded once, or a reveal, which
        each player gets with their own points."""
        if "text" in event:
            await self.send_text(event["text"])
        else:
            await self.send_json(rules.project_reveal(event["frame"], user_id=self.user_id))
