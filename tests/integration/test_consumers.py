"""The ASGI app in-process with Channels' WebsocketCommunicator, over the real Redis layer."""

import asyncio

import pytest
from channels.testing import WebsocketCommunicator

ORIGIN = [(b"origin", b"http://127.0.0.1:8000")]


@pytest.fixture(scope="module")
def app(django_ready):
    from course_project.asgi import application

    return application


@pytest.fixture
def ticket(django_ready):
    from common.tickets import ticket_issue

    return lambda uid: ticket_issue(user_id=uid)


async def _connect(app, path, subprotocols, headers=ORIGIN):
    comm = WebsocketCommunicator(app, path, headers=headers, subprotocols=subprotocols)
    connected, detail = await comm.connect(timeout=5)
    return comm, connected, detail


async def test_two_chat_clients_both_receive_a_message_and_the_ticket_is_the_subprotocol(
    app, ticket
):
    offered = ticket(1)  # issued once: a ticket holds its second of issue, so two can differ
    a, ok_a, proto_a = await _connect(app, "/ws/chat/unit-room/", [offered])
    b, ok_b, _ = await _connect(app, "/ws/chat/unit-room/", [ticket(2)])
    assert ok_a and ok_b and proto_a == offered
    await a.send_json_to({"message": "你好 Channels"})
    got_a, got_b = await a.receive_json_from(5), await b.receive_json_from(5)
    assert (
        got_a
        == got_b
        == {"type": "message", "message": "你好 Channels", "user_id": 1, "room": "unit-room"}
    )
    await a.disconnect()
    await b.disconnect()


async def test_a_bad_chat_frame_gets_an_error_and_the_connection_stays_open(app, ticket):
    comm, ok, _ = await _connect(app, "/ws/chat/unit-bad/", [ticket(3)])
    assert ok
    for frame, code in (
        ("not json", "bad_json"),
        ("[1]", "bad_json"),
        ('{"message": 5}', "bad_field"),
        ('{"message": ""}', "bad_field"),
    ):
        await comm.send_to(text_data=frame)
        reply = await comm.receive_json_from(5)
        assert reply["type"] == "error" and reply["code"] == code
    await comm.send_json_to({"message": "still here"})
    assert (await comm.receive_json_from(5))["message"] == "still here"
    await comm.disconnect()


async def test_an_oversize_frame_closes_with_1009(app, ticket):
    comm, ok, _ = await _connect(app, "/ws/chat/unit-big/", [ticket(3)])
    await comm.send_to(text_data='{"message": "' + "x" * 5000 + '"}')
    assert (await comm.receive_output(5)) == {"type": "websocket.close", "code": 1009}


@pytest.mark.parametrize(
    "subprotocols, headers",
    [
        (None, ORIGIN),  # no subprotocol
        (["chat"], ORIGIN),  # a subprotocol that is no ticket (the guide accepted this)
        (["qt1.1.1abc.AAAAAAAAAAAAAAAAAAAAAAAAAAAA"], ORIGIN),  # forged
        ("TICKET", [(b"origin", b"http://evil.example")]),  # foreign origin
        ("TICKET", []),  # no origin at all
    ],
    ids=["no-subprotocol", "not-a-ticket", "forged", "foreign-origin", "no-origin"],
)
async def test_bad_handshakes_are_refused_before_accept(app, ticket, subprotocols, headers):
    protos = [ticket(1)] if subprotocols == "TICKET" else subprotocols
    comm, ok, _ = await _connect(app, "/ws/chat/unit-refused/", protos, headers)
    assert not ok


async def test_a_room_name_outside_group_name_characters_is_refused_not_crashed(app, ticket):
    """`\\w+` would route 中文 to the consumer, which then fails at group_add."""
    comm, ok, _ = await _connect(app, "/ws/chat/中文房间/", [ticket(1)])
    assert not ok


async def test_an_unknown_websocket_path_is_refused_before_accept(app, ticket):
    comm, ok, _ = await _connect(app, "/ws/nowhere/", [ticket(1)])
    assert not ok


async def test_a_game_socket_whose_handler_crashes_gives_up_its_seat(app, ticket, pools,
                                                                     monkeypatch):
    # A bug in a handler ends that connection, but disconnect() must still run: a seat
    # left behind would count as connected for ever, and no question would close early again.
    from answer_game.consumers import GameConsumer
    from answer_game.driver import hub
    from answer_game.services import room_create

    await hub.start()
    try:
        room_id = await room_create(host_id=1, questions=3, seconds=10)
        host, ok_host, _ = await _connect(app, f"/ws/game/controller/{room_id}/1", [ticket(1)])
        guest, ok_guest, _ = await _connect(app, f"/ws/game/controller/{room_id}/2", [ticket(2)])
        assert ok_host and ok_guest
        while (frame := await host.receive_json_from(5))["type"] != "lobby" or len(
                frame["players"]) < 2:
            pass
        assert [p["connected"] for p in frame["players"]] == [True, True]

        async def broken(self, data):
            raise RuntimeError("a bug in a handler")

        monkeypatch.setattr(GameConsumer, "receive_json", broken)
        await guest.send_json_to({"type": "start"})
        with pytest.raises(RuntimeError, match="a bug in a handler"):
            await asyncio.wait_for(guest.future, 5)  # the guest's application task

        lobby = await host.receive_json_from(5)
        assert lobby["type"] == "lobby"
        assert [(p["user_id"], p["connected"]) for p in lobby["players"]] == [(1, True), (2, False)]
        assert [m.user_id for m in hub.local[room_id].values()] == [1]
        await host.disconnect()
    finally:
        await hub.stop()
