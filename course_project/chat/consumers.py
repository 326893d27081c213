"""The guide's ChatConsumer, fixed.

The guide read `self.room_id` (never set; the route's kwarg was stored as `self.room_name`), so
every connection died with AttributeError. It also accepted without a subprotocol and let a bad
frame raise. Here the group name comes from the route, the handshake uses the ticket, and a bad
frame gets an `error` frame while the connection stays open; so does a message the channel layer
could not take (Redis restarting): `unavailable`, try again.
"""

from __future__ import annotations

from typing import Any

from common.resilience import OUTAGE_ERRORS, ResilientConsumer, outage_warn

MAX_MESSAGE_CHARS = 1000


class ChatConsumer(ResilientConsumer):
    async def connect(self) -> None:
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.group_name = f"chat.{self.room_name}"
        try:
            await self.group_join(self.group_name)
        except OUTAGE_ERRORS as exc:
            outage_warn("chat connect", exc)
            await self.refuse_unavailable("the chat cannot reach Redis; retry in a moment")
            return
        await self.accept_with_ticket()

    async def disconnect(self, code: int) -> None:
        # Also runs after connect() failed (the socket is gone all the same): leave only a group
        # that was joined.
        for group in list(self.groups_joined):
            await self.group_leave(group)

    async def receive_json(self, data: dict[str, Any]) -> None:
        message = data.get("message")
        if not isinstance(message, str) or not message.strip():
            await self.send_error("bad_field", "'message' must be a non-empty string")
            return
        if len(message) > MAX_MESSAGE_CHARS:
            await self.send_error("bad_field", f"'message' is over {MAX_MESSAGE_CHARS} characters")
            return
        try:
            await self.channel_layer.group_send(
                self.group_name,
                {"type": "chat.message", "message": message, "user_id": self.scope["user_id"]},
            )
        except OUTAGE_ERRORS as exc:
            outage_warn("chat group_send", exc)
            await self.send_error("unavailable", "the message was not sent; try again")

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_json(
            {
                "type": "message",
                "message": event["message"],
                "user_id": event["user_id"],
                "room": self.room_name,
            }
        )
