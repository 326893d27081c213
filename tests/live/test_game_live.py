"""The quiz battle over real websockets against the live server, MySQL and Redis."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from answer_game.services import ROOM_CODE_ALPHABET, ROOM_CODE_LENGTH
from course_project.config import config_get
from workbook.chapters.bots import Bot
from workbook.chapters.client import http, player_new, ws_open
from workbook.paths import REPO_ROOT

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("live_server", "django_ready")]

ANSWERS = {q["id"]: q["answer"] for q in json.loads(
    (REPO_ROOT / "data" / "questions.json").read_text(encoding="utf-8"))}


def base() -> str:
    return config_get().server_url


def room_new(host: dict, *, questions: int, seconds: float) -> str:
    reply = http("POST", "/api/rooms", {"questions": questions, "seconds": seconds},
                 ticket=host["ticket"])
    assert reply.status == 201, reply
    return reply.body["room_id"]


async def seated(*players: dict, room_id: str, watch: bool = False) -> list[Bot]:
    bots = []
    for player in players:
        bot = await Bot.join(player, room_id, bases=[base()], watch=watch)
        state = await bot.until("state")
        assert state["room_id"] == room_id
        bots.append(bot)
    return bots


def right(q: dict) -> int:
    return ANSWERS[q["question_id"]]


def wrong(q: dict) -> int:
    return (ANSWERS[q["question_id"]] + 1) % len(q["choices"])


async def test_three_players_play_a_full_game_and_every_ack_is_one_database_row(pools):
    from answer_game.selectors import answers_list

    host, ann, bob = (player_new(n) for n in ("host", "ann", "鲍勃"))
    room_id = room_new(host, questions=2, seconds=2)
    bots = await seated(host, ann, bob, room_id=room_id)
    lobby = await bots[0].until("lobby", where=lambda f: len(f["players"]) == 3)
    assert [p["nickname"] for p in lobby["players"]] == ["host", "ann", "鲍勃"]
    await bots[0].send({"type": "start"})

    # Question 1: everybody answers at once, so it closes early (well before its 2 s).
    questions = [await b.until("question") for b in bots]
    assert len({json.dumps(q) for q in questions}) == 1 and "correct" not in questions[0]
    q1 = questions[0]
    opened = time.monotonic()
    for bot, pick in zip(bots, (right, right, wrong), strict=True):
        await bot.answer(q1["question_id"], pick(q1))
    reveals = [await b.until("reveal") for b in bots]
    assert time.monotonic() - opened < 1.5
    assert all(r["correct"] == right(q1) for r in reveals)
    assert [r["points"] >= 500 for r in reveals] == [True, True, False]
    assert reveals[2]["points"] == 0 and "points_all" not in reveals[0]

    # Question 2: only ann answers; it closes at its deadline.
    q2 = await bots[1].until("question")
    await bots[1].answer(q2["question_id"], right(q2))
    finished = [await b.until("finished", timeout=8) for b in bots]
    assert len({json.dumps(f) for f in finished}) == 1
    board = finished[0]["leaderboard"]
    assert [row["user_id"] for row in board] == [ann["user_id"], host["user_id"], bob["user_id"]]
    assert [row["rank"] for row in board] == [1, 2, 3] and board[2]["score"] == 0

    # Every ack is exactly one row, and the rows add up to the leaderboard.
    acks = {(q, b.user_id) for b in bots for q in b.acked}
    rows = await answers_list(room_id=room_id)
    assert {(r["question_id"], r["user_id"]) for r in rows} == acks and len(rows) == 4
    totals = {b.user_id: sum(r["points"] for r in rows if r["user_id"] == b.user_id)
              for b in bots}
    assert {row["user_id"]: row["score"] for row in board} == totals
    mine = {b.user_id: r["points"] for b in bots for r in b.frames("reveal")[:1]}
    first = q1["question_id"]
    assert mine == {r["user_id"]: r["points"] for r in rows if r["question_id"] == first}

    results = http("GET", f"/api/rooms/{room_id}/results")
    assert results.status == 200 and results.body["status"] == "finished"
    assert results.body["leaderboard"] == board
    assert [(a["question_id"], a["user_id"], a["points"]) for a in results.body["answers"]] == [
        (r["question_id"], r["user_id"], r["points"]) for r in rows]
    csv_reply = http("GET", f"/api/rooms/{room_id}/results?format=csv")
    assert csv_reply.status == 200 and csv_reply.content_type == "text/csv"
    table = list(csv.DictReader(io.StringIO(csv_reply.body)))
    assert [(int(t["user_id"]), int(t["points"]), t["nickname"]) for t in table] == [
        (r["user_id"], r["points"], r["nickname"]) for r in rows]
    for bot in bots:
        await bot.close()


async def test_the_host_opens_a_rematch_that_seats_the_same_players_and_tells_the_room():
    host, ann = player_new("host"), player_new("安")
    room_id = room_new(host, questions=1, seconds=1)
    path = f"/api/rooms/{room_id}/rematch"
    bots = await seated(host, ann, room_id=room_id)
    assert http("POST", path, ticket=host["ticket"]).body["error"] == "wrong_phase"  # 409
    await bots[0].send({"type": "start"})
    for bot in bots:
        await bot.until("finished", timeout=8)

    assert (http("POST", path, ticket=ann["ticket"]).status, http("POST", path).status) == (
        403, 401)
    made = http("POST", path, ticket=host["ticket"])
    assert made.status == 201
    new_id = made.body["room_id"]
    assert new_id != room_id and len(new_id) == ROOM_CODE_LENGTH
    told = [await b.until("rematch") for b in bots]
    assert told == [{"type": "rematch", "room_id": new_id}] * 2
    again = http("POST", path, ticket=host["ticket"])  # a second click: the same room
    assert (again.status, again.body) == (200, {"room_id": new_id})
    late = await seated(ann, room_id=room_id)  # back to the old room: its state points on
    assert late[0].frames("state")[-1]["rematch"] == new_id

    # In the new room both are seated before anyone connects, the host still hosts.
    results = http("GET", f"/api/rooms/{new_id}/results").body
    assert (results["status"], results["questions"], results["seconds"]) == ("lobby", 1, 1.0)
    assert {r["user_id"] for r in results["leaderboard"]} == {host["user_id"], ann["user_id"]}
    rematch = await seated(ann, room_id=new_id)
    state = rematch[0].frames("state")[-1]
    assert state["host_id"] == host["user_id"] and state["you"]["player"]
    assert [(p["nickname"], p["connected"]) for p in state["players"]] == [
        ("host", False), ("安", True)]
    assert http("POST", "/api/rooms/NOSUCH/rematch", ticket=host["ticket"]).status == 404
    for bot in (*bots, *late, *rematch):
        await bot.close()


async def test_every_bad_frame_gets_its_error_code_and_changes_nothing(pools):
    from answer_game.selectors import answers_list

    host, ann, viewer = (player_new(n) for n in ("strict-host", "strict-ann", "viewer"))
    room_id = room_new(host, questions=2, seconds=2)
    h, a = await seated(host, ann, room_id=room_id)
    screen, = await seated(viewer, room_id=room_id, watch=True)

    async def error_for(bot: Bot, raw: str | dict) -> str:
        await (bot.ws.send(raw) if isinstance(raw, str) else bot.send(raw))
        return (await bot.until("error"))["code"]

    codes = {
        "bad_json": await error_for(a, "{not json"),
        "bad_json array": await error_for(a, "[1, 2]"),
        "unknown_type": await error_for(a, {"type": "cheat"}),
        "bad_field": await error_for(a, {"kind": "answer"}),
        "not_host": await error_for(a, {"type": "start"}),
        "wrong_phase": await error_for(h, {"type": "next"}),
        "wrong_phase answer": await error_for(a, {"type": "answer", "question_id": 1,
                                                  "choice": 0}),
    }
    await h.send({"type": "start"})
    q = await a.until("question")
    qid = q["question_id"]
    codes |= {
        "wrong_phase start": await error_for(h, {"type": "start"}),
        "bad_field question_id": await error_for(a, {"type": "answer", "question_id": str(qid),
                                                     "choice": 0}),
        "unknown_question": await error_for(a, {"type": "answer", "question_id": qid + 1000,
                                                "choice": 0}),
        "bad_choice": await error_for(a, {"type": "answer", "question_id": qid, "choice": 4}),
        "bad_choice bool": await error_for(a, {"type": "answer", "question_id": qid,
                                               "choice": True}),
        "not_player": await error_for(screen, {"type": "answer", "question_id": qid,
                                               "choice": 0}),
    }
    await a.answer(qid, wrong(q))
    await a.until("answer_ack")
    codes["duplicate_answer"] = await error_for(a, {"type": "answer", "question_id": qid,
                                                    "choice": right(q)})
    await h.until("reveal", timeout=4)
    codes["too_late"] = await error_for(h, {"type": "answer", "question_id": qid, "choice": 0})
    codes["not_host next"] = await error_for(a, {"type": "next"})

    assert codes == {
        "bad_json": "bad_json", "bad_json array": "bad_json", "unknown_type": "unknown_type",
        "bad_field": "bad_field", "not_host": "not_host", "wrong_phase": "wrong_phase",
        "wrong_phase answer": "wrong_phase", "wrong_phase start": "wrong_phase",
        "bad_field question_id": "bad_field", "unknown_question": "unknown_question",
        "bad_choice": "bad_choice", "bad_choice bool": "bad_choice", "not_player": "not_player",
        "duplicate_answer": "duplicate_answer", "too_late": "too_late",
        "not_host next": "not_host",
    }
    rows = await answers_list(room_id=room_id)
    assert [(r["user_id"], r["choice"]) for r in rows] == [(ann["user_id"], wrong(q))]

    # A flood: one rate_limited error, the excess dropped, the connection still open.
    for _ in range(80):
        await a.ws.send('{"type": "cheat"}')
    flood = []
    while True:
        try:
            flood.append((await a.recv(timeout=1.0)).get("code"))
        except TimeoutError:
            break
    assert flood.count("rate_limited") == 1 and 30 <= flood.count("unknown_type") <= 50
    await asyncio.sleep(0.3)
    assert await error_for(a, {"type": "cheat"}) == "unknown_type"

    # An oversize frame closes the connection with 1009 (the others are untouched).
    await a.ws.send(json.dumps({"type": "answer", "pad": "x" * 5000}))
    with pytest.raises(ConnectionClosed) as closed:
        await a.recv(timeout=3)
    assert closed.value.rcvd.code == 1009
    assert await error_for(h, {"type": "cheat"}) == "unknown_type"
    for bot in (h, screen):
        await bot.close()


async def test_a_player_who_drops_keeps_seat_and_score_and_gets_the_state_back():
    host, ann = player_new("re-host"), player_new("re-ann")
    room_id = room_new(host, questions=2, seconds=2)
    h, a = await seated(host, ann, room_id=room_id)
    await h.send({"type": "start"})
    q = await a.until("question")
    await a.answer(q["question_id"], right(q))
    await a.until("answer_ack")
    await a.close()
    left = await h.until("progress", where=lambda f: f["total"] == 2 and f["answered"] == 1)
    assert left["question_id"] == q["question_id"]

    back = await Bot.join(ann, room_id, bases=[base()])
    state = await back.until("state")
    assert (state["phase"], state["answered"], state["question"]["question_id"]) == (
        "question", True, q["question_id"])
    assert state["you"]["score"] >= 500 and 0 < state["remaining"] <= 2
    assert "correct" not in json.dumps(state)
    assert [p["user_id"] for p in state["players"]] == [host["user_id"], ann["user_id"]]

    await h.answer(q["question_id"], wrong(q))  # both answered: early close
    reveal = await back.until("reveal")
    assert reveal["points"] == state["you"]["score"]
    await h.send({"type": "next"})  # the host skips the pause
    nxt = await back.until("question", timeout=1.5)
    assert nxt["index"] == 1
    for bot in (h, back):
        await bot.close()


async def test_a_socket_that_stops_reading_does_not_hold_up_the_room_and_catches_up_in_order():
    """Tried: a lobby of 200 seats with 32-character nicknames (a lobby frame is about 30 KB), a
    watcher whose socket stops reading (a 4 KiB receive buffer, one frame of client queue; the
    server's kernel still takes about 3 MB before its writes wait), and a player who leaves and
    comes back 60 times (each time one lobby frame to every socket).
    Asserted: the host gets every one of those lobby frames while the watcher reads nothing; the
    server did queue frames for the stalled socket (health: frames_queued_behind grew); and once
    the watcher reads again, it gets the same lobby frames as the host, in the same order."""
    import socket
    from urllib.parse import urlsplit

    if config_get().public_url:
        pytest.skip("behind a proxy the proxy's buffers take what a stalled reader does not, and "
                    "/api/health answers from any node: the server's own queue is not reached")

    players = [player_new("长" * 29 + f"{n:03d}") for n in range(200)]
    room_id = room_new(players[0], questions=1, seconds=5)
    for player in players[2:]:  # a seat stays when its player leaves
        for bot in await seated(player, room_id=room_id):
            await bot.close()
    host, churner = await seated(players[0], players[1], room_id=room_id)
    await host.until("lobby", where=lambda f: len(f["players"]) == 200)
    behind_before = http("GET", "/api/health").body["game"]["frames_queued_behind"]

    url = urlsplit(base())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((url.hostname, url.port))
    sock.setblocking(False)
    stalled = await ws_open(f"/ws/game/controller/{room_id}/{players[0]['user_id']}?watch=1",
                            players[0]["ticket"], sock=sock, max_queue=1)
    assert json.loads(await stalled.recv())["type"] == "state"

    def seen(frame: dict) -> tuple:
        return tuple((p["user_id"], p["connected"]) for p in frame["players"])

    sent = []
    for _ in range(60):
        for step in (churner.close, churner.connect):
            await step()
            up = step == churner.connect
            lobby = await host.until("lobby", where=lambda f, up=up: dict(seen(f))[
                churner.user_id] is up)
            sent.append(seen(lobby))
    behind = http("GET", "/api/health").body["game"]["frames_queued_behind"] - behind_before
    assert behind > 0, "the watcher's socket never stalled: make the lobby frames bigger"

    got = []
    while len(got) < len(sent):
        frame = json.loads(await asyncio.wait_for(stalled.recv(), 5))
        if frame["type"] == "lobby":
            got.append(seen(frame))
    assert got == sent
    await stalled.close()
    await host.close()
    await churner.close()


async def test_a_foreign_seat_or_an_unknown_room_is_refused_before_accept():
    host, ann = player_new("seat-host"), player_new("seat-ann")
    room_id = room_new(host, questions=1, seconds=5)
    attempts = {
        "someone else's seat": (f"/ws/game/controller/{room_id}/{host['user_id']}", ann),
        "unknown room": (f"/ws/game/controller/NoSuchRoom/{ann['user_id']}", ann),
    }
    refused = {}
    for name, (path, player) in attempts.items():
        try:
            async with await ws_open(path, player["ticket"]):
                refused[name] = "accepted"
        except InvalidStatus as exc:
            refused[name] = exc.response.status_code
    assert refused == {name: 403 for name in attempts}


@pytest.mark.parametrize(("body", "status"), [
    ({"questions": 0, "seconds": 5}, 400), ({"questions": 51, "seconds": 5}, 400),
    ({"questions": True, "seconds": 5}, 400), ({"questions": "3", "seconds": 5}, 400),
    ({"questions": 3.0, "seconds": 5}, 400), ({"seconds": 5}, 400),
    ({"questions": 3, "seconds": 0.5}, 400), ({"questions": 3, "seconds": 121}, 400),
    ({"questions": 3, "seconds": False}, 400), ({"questions": 3, "seconds": "5"}, 400),
    ({"questions": 3, "seconds": 5, "extra": 1}, 400), ({"questions": 3}, 400),
    ({"questions": 1, "seconds": 1}, 201), ({"questions": 50, "seconds": 120}, 201),
    ({"questions": 2, "seconds": 7.5}, 201),
])
def test_room_creation_validates_its_body_strictly(body, status):
    host = _host()
    reply = http("POST", "/api/rooms", body, ticket=host["ticket"])
    assert reply.status == status, reply
    if status == 201:
        assert set(reply.body) == {"room_id"}
        # A code to read off a projector: six capitals and digits, none that look alike.
        assert re.fullmatch(f"[{ROOM_CODE_ALPHABET}]{{{ROOM_CODE_LENGTH}}}",
                            reply.body["room_id"])
    else:
        assert reply.body["error"] == "bad_field"


def test_room_creation_needs_a_valid_ticket_and_json():
    host = _host()
    body = {"questions": 1, "seconds": 5}
    assert http("POST", "/api/rooms", body).status == 401
    assert http("POST", "/api/rooms", body, ticket="qt1.1.abc.forgedforgedforgedforged"
                ).body["error"] == "bad_ticket"
    assert http("POST", "/api/rooms", raw=b"{nope", ticket=host["ticket"]).status == 400
    assert http("POST", "/api/rooms", raw=b'{"questions": 1, "seconds": NaN}',
                ticket=host["ticket"]).status == 400
    assert http("GET", "/api/rooms").status == 405


def test_results_of_an_unknown_room_are_a_json_404():
    reply = http("GET", "/api/rooms/NoSuchRoom/results")
    assert (reply.status, reply.body["error"]) == (404, "unknown_room")


_HOST: dict = {}


def _host() -> dict:
    if not _HOST:
        _HOST.update(player_new("validator"))
    return _HOST
