"""The players' HTTP API, through Django's async test client."""

from django.test import AsyncClient


async def test_a_user_is_found_by_uid(app):
    reply = await AsyncClient().get("/api/user?uid=1")
    assert reply.status_code == 200
    assert reply.json()["user_id"] == 1


async def test_an_unknown_user_is_a_json_404_and_a_bad_uid_a_400(app):
    unknown = await AsyncClient().get("/api/user?uid=999999999")
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_user"
    bad = await AsyncClient().get("/api/user?uid=abc")
    assert bad.status_code == 400 and bad.json()["error"] == "bad_uid"
