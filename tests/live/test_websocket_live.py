"""Websockets through the live uvicorn server with a real client (the `websockets` library)."""

import asyncio

import pytest
from django.core import signing
from websockets.exceptions import InvalidStatus

from workbook.chapters.client import player_new, ws_open, ws_recv_json, ws_send_json

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("live_server", "django_ready")]


async def test_two_real_clients_chat_through_the_live_server():
    a, b = player_new("chat-a"), player_new("chat-b")
    async with (
        await ws_open("/ws/chat/live-chat/", a["ticket"]) as wa,
        await ws_open("/ws/chat/live-chat/", b["ticket"]) as wb,
    ):
        assert wa.subprotocol == a["ticket"]
        await ws_send_json(wa, {"message": "hello from a"})
        for ws in (wa, wb):
            got = await ws_recv_json(ws)
            assert (got["message"], got["user_id"]) == ("hello from a", a["user_id"])


def _expired_ticket(user_id: int) -> str:
    from common.tickets import PREFIX

    signer = signing.TimestampSigner(salt="quiz-battle.ticket.v1", sep=".")
    old = signing.b62_encode(int(signing.b62_decode(signer.timestamp())) - 13 * 3600)
    value = f"{user_id}.{old}"
    return PREFIX + f"{value}.{signer.signature(value)}"


def _refusals():
    a = player_new("refused")
    good = a["ticket"]
    return {
        "no subprotocol": dict(ticket=None),
        "not a ticket": dict(ticket="chat"),
        "forged": dict(ticket=good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")),
        "truncated": dict(ticket=good[: len(good) // 2]),
        "expired": dict(ticket=_expired_ticket(a["user_id"])),
        "foreign origin": dict(ticket=good, origin="http://evil.example"),
        "missing origin": dict(ticket=good, origin=""),
    }


async def test_every_bad_handshake_is_refused_with_403_before_accept():
    refused = {}
    for name, kw in _refusals().items():
        try:
            async with await ws_open("/ws/chat/live-refused/", **kw):
                refused[name] = "accepted"
        except InvalidStatus as exc:
            refused[name] = exc.response.status_code
    assert refused == {name: 403 for name in refused}


@pytest.mark.slow
async def test_a_connection_idle_for_60_seconds_still_receives_a_broadcast():
    """redis-py 8's 5 s socket_timeout default would have killed the layer's blocking read."""
    a, b = player_new("idle"), player_new("talker")
    async with await ws_open("/ws/chat/live-idle/", a["ticket"]) as idle:
        await asyncio.sleep(61)
        async with await ws_open("/ws/chat/live-idle/", b["ticket"]) as talker:
            await ws_send_json(talker, {"message": "still there?"})
            assert (await ws_recv_json(idle, timeout=10))["message"] == "still there?"
