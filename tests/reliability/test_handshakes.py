"""Forged, expired, truncated and misplaced handshakes: all refused before accept."""

from __future__ import annotations

import re

import pytest
from django.core import signing
from websockets.exceptions import InvalidStatus

from course_project.config import config_get
from workbook.chapters.bots import Bot
from workbook.chapters.client import player_new, ws_open

from .support import room_new

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("live_server", "django_ready")]

SALT = "quiz-battle.ticket.v1"


def signed(value: str, *, key: str | None = None, age: int = 0, salt: str = SALT) -> str:
    """A ticket as the server would sign it (with its key unless `key`), `age` seconds old."""
    signer = signing.TimestampSigner(key=key, salt=salt, sep=".")
    stamp = signing.b62_encode(int(signing.b62_decode(signer.timestamp())) - age)
    payload = f"{value}.{stamp}"
    return f"qt1.{payload}.{signer.signature(payload)}"


def attempts(a: dict, b: dict) -> dict[str, dict]:
    """Handshakes made with A's ticket (or forgeries of it), each of which must be refused."""
    good = a["ticket"]
    version, uid, stamp, sig = good.split(".")
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    moved = stamp[:-1] + ("Z" if stamp[-1] != "Z" else "Y")  # another second
    return {
        "no subprotocol": {"ticket": None},
        "a subprotocol that is no ticket": {"ticket": "chat"},
        "signature changed": {"ticket": f"{version}.{uid}.{stamp}.{flipped}"},
        "user id changed, signature kept": {"ticket": f"{version}.{b['user_id']}.{stamp}.{sig}"},
        "timestamp changed": {"ticket": f"{version}.{uid}.{moved}.{sig}"},
        "truncated": {"ticket": good[: len(good) // 2]},
        "signature cut short": {"ticket": good[:-5]},
        "expired (13 h old)": {"ticket": signed(str(a["user_id"]), age=13 * 3600)},
        "signed with another key": {"ticket": signed(str(a["user_id"]), key="not-the-key" * 5)},
        "signed for another purpose (salt)": {"ticket": signed(str(a["user_id"]), salt="x")},
        "another version prefix": {"ticket": "qt2." + good[4:]},
        "SQL in the ticket (not a header token)": {
            "ticket": "qt1.1.a.'OR'1'='1'--aaaaaaaaaaaaaaaaaa"},
        "a 6 KiB subprotocol": {"ticket": "qt1." + "a" * 6000},
        "foreign Origin": {"ticket": good, "origin": "http://evil.example"},
        "look-alike Origin": {"ticket": good, "origin": "http://127.0.0.1.evil.example"},
        "Origin null": {"ticket": good, "origin": "null"},
        "no Origin": {"ticket": good, "origin": ""},
    }


async def refused(path: str, *, ticket: str | None, **kw) -> int | str:
    """The HTTP status of the handshake. The ticket goes out as a raw Sec-WebSocket-Protocol
    header: the client library would refuse to send what is not a valid token."""
    headers = {"Sec-WebSocket-Protocol": ticket} if ticket else {}
    try:
        async with await ws_open(path, None, open_timeout=5, additional_headers=headers, **kw):
            return "accepted"
    except InvalidStatus as exc:
        return exc.response.status_code
    except Exception as exc:  # noqa: BLE001 - e.g. accepted with a subprotocol never offered
        return f"{type(exc).__name__}: {exc}"


async def test_every_bad_handshake_is_refused_before_accept(figures, server_logs):
    """Tried: on the chat and the game routes, no subprotocol, a subprotocol that is no ticket,
    tickets with a changed signature, user id or timestamp, truncated, expired, signed with
    another key or salt, another version, SQL, 6 KiB; foreign, look-alike, null and missing
    Origins; B's valid ticket replayed on A's seat and A's ticket on B's seat; unknown rooms,
    users and paths.
    Asserted: every one was answered 403 before accept (no 101, nothing accepted in the server
    log, no seat taken in the room), while the valid handshakes of the control succeed."""
    base = config_get().server_url
    host, a, b = (player_new(f"hs-{n}") for n in ("host", "a", "b"))
    room_id = room_new(host, base, questions=1, seconds=5)
    seat_a = f"/ws/game/controller/{room_id}/{a['user_id']}"
    cases: dict[str, tuple[str, dict]] = {}
    for name, kw in attempts(a, b).items():
        cases[f"chat: {name}"] = ("/ws/chat/handshakes/", kw)
        cases[f"game: {name}"] = (seat_a, kw)
    cases |= {
        "game: B's valid ticket on A's seat": (seat_a, {"ticket": b["ticket"]}),
        "game: A's valid ticket on B's seat": (
            f"/ws/game/controller/{room_id}/{b['user_id']}", {"ticket": a["ticket"]}),
        "game: user id 0 in the path": (f"/ws/game/controller/{room_id}/0",
                                        {"ticket": a["ticket"]}),
        "game: unknown room": (f"/ws/game/controller/NoSuchRoom/{a['user_id']}",
                               {"ticket": a["ticket"]}),
        "game: room id too long": (f"/ws/game/controller/{'r' * 17}/{a['user_id']}",
                                   {"ticket": a["ticket"]}),
        "game: user id with 11 digits": (f"/ws/game/controller/{room_id}/{'9' * 11}",
                                         {"ticket": a["ticket"]}),
        "unknown path": ("/ws/admin/", {"ticket": a["ticket"]}),
        "chat: room name not allowed in a group name": ("/ws/chat/%E4%B8%AD%E6%96%87/",
                                                        {"ticket": a["ticket"]}),
    }
    results = {name: await refused(path, base=base, **kw) for name, (path, kw) in cases.items()}

    # The control: the same routes accept valid handshakes, and A's seat is still free.
    screen = await Bot.join(host, room_id, bases=[base], watch=True)
    state = await screen.until("state")
    async with await ws_open("/ws/chat/handshakes/", a["ticket"], base=base) as ws:
        chat_ok = ws.subprotocol == a["ticket"]
    await screen.close()
    log = "".join(server_logs.added([server_logs_file()]).values())
    accepted = re.findall(r'"WebSocket /ws/[^"]*" \[accepted\]', log)

    # A subprotocol header that is no list of tokens fails in uvicorn's HTTP parser (400), before
    # the application sees it; everything else is refused by the app before accept (403).
    not_refused = {name: got for name, got in results.items()
                   if got != (400 if "not a header token" in name else 403)}
    figures.report("bad handshakes", handshakes=len(results), refusals=len(results) -
                   len(not_refused), accepted_in_log=len(accepted))
    assert not not_refused, not_refused
    assert state["players"] == [] and chat_ok
    assert len(accepted) == 2, accepted  # the two of the control, nothing else


def server_logs_file():
    from workbook.setup.liveserver import LiveServer

    return LiveServer.default().log_file
