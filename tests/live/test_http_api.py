"""The HTTP API of the live server (uvicorn, real MySQL and Redis)."""

import pytest

from workbook.chapters.client import http, player_new

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("live_server")]


def test_health_reports_both_pools_and_the_redis_layer(django_ready):
    reply = http("GET", "/api/health")
    assert reply.status == 200
    assert reply.body["status"] == "ok"
    assert set(reply.body["pools"]) == {"study", "game"}
    from django.conf import settings

    from course_project.config import config_get

    layer = reply.body["channel_layer"]
    assert (layer["class"], layer["redis"]) == (settings.CHANNEL_LAYERS["default"]["BACKEND"],
                                                "ok")
    # Behind Redis Sentinel (the deployment), also the master the sentinels named.
    assert ("sentinel_master" in layer) == bool(config_get().redis_sentinels)
    assert set(reply.body["game"]) == {"rooms_driven", "sockets", "frames_queued_behind"}


def test_user_lookup_returns_the_seeded_user():
    assert http("GET", "/api/user?uid=1").body == {"user_id": 1, "nickname": "小明"}


@pytest.mark.parametrize(
    "uid",
    ["abc", "", "-1", "0", "1.5", "1e3", "١٢", "99999999999", "1 OR 1=1", "1;DROP TABLE user"],
)
def test_user_lookup_with_a_non_integer_is_a_400_json_error(uid):
    from urllib.parse import quote

    reply = http("GET", "/api/user?uid=" + quote(uid))
    assert (reply.status, reply.body["error"]) == (400, "bad_uid")


def test_user_lookup_of_an_unknown_user_is_a_404_json_error():
    reply = http("GET", "/api/user?uid=4000000000")
    assert (reply.status, reply.body["error"]) == (404, "unknown_user")


def test_a_new_player_gets_an_id_and_a_ticket_and_keeps_a_chinese_nickname():
    player = player_new("  小王  ")
    assert player["nickname"] == "小王" and player["ticket"].startswith("qt1.")
    assert http("GET", f"/api/user?uid={player['user_id']}").body["nickname"] == "小王"


@pytest.mark.parametrize(
    "body",
    [
        {"nickname": ""},
        {"nickname": "   "},
        {"nickname": "x" * 33},
        {"nickname": 5},
        {"nickname": None},
        {},
        {"nickname": "a\x00b"},
        {"nickname": ["a"]},
    ],
)
def test_a_bad_nickname_is_a_400_and_creates_nobody(body):
    reply = http("POST", "/api/players", body)
    assert (reply.status, reply.body["error"]) == (400, "bad_nickname")


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_a_400(raw):
    reply = http("POST", "/api/players", raw=raw)
    assert (reply.status, reply.body["error"]) == (400, "bad_json")


def test_a_wrong_method_is_a_405_json_error():
    assert http("GET", "/api/players").status == 405
    assert http("POST", "/api/health", {}).body["error"] == "method_not_allowed"


def test_an_unknown_path_is_a_404_json_error():
    reply = http("GET", "/api/nothing-here")
    assert (reply.status, reply.body["error"]) == (404, "not_found")


def test_the_chat_page_of_a_room_opens_that_rooms_socket():
    reply = http("GET", "/chat/lobby_2-b/")
    assert (reply.status, reply.content_type) == (200, "text/html")
    assert '<script id="room-name" type="application/json">"lobby_2-b"</script>' in reply.body
    assert "/ws/chat/${room}/" in reply.body


@pytest.mark.parametrize("path", ["/chat/%E6%88%BF%E9%97%B4/", "/chat/" + "x" * 65 + "/",
                                  "/chat/a.b/"])
def test_no_chat_page_for_a_room_name_the_socket_refuses(path):
    reply = http("GET", path)
    assert (reply.status, reply.body["error"]) == (404, "not_found")
