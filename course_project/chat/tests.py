"""The chat consumer, in-process: two clients, and a handshake from elsewhere."""

import secrets

from channels.testing import WebsocketCommunicator

from common.tickets import ticket_issue

ORIGIN = (b"origin", b"http://127.0.0.1")  # a page of this server (the origin check)


def client(app, room, user_id, origin=ORIGIN):
    return WebsocketCommunicator(app, f"/ws/chat/{room}/", headers=[origin],
                                 subprotocols=[ticket_issue(user_id=user_id)])


async def test_a_message_reaches_everyone_in_the_room(app):
    room = "tests" + secrets.token_hex(4)
    alice, bob = client(app, room, 1), client(app, room, 2)
    assert (await alice.connect())[0] and (await bob.connect())[0]
    await alice.send_json_to({"message": "你好"})
    for ws in (alice, bob):
        assert await ws.receive_json_from(5) == {"type": "message", "message": "你好",
                                                 "user_id": 1, "room": room}
    await alice.disconnect()
    await bob.disconnect()


async def test_a_handshake_from_another_origin_is_refused(app):
    evil = client(app, "tests", 1, origin=(b"origin", b"http://evil.example"))
    connected, _ = await evil.connect()
    assert not connected
