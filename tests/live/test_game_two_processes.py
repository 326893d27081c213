"""One room, players on two uvicorn processes sharing Redis and MySQL; then the driver dies."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from workbook.chapters.bots import Bot
from workbook.chapters.client import http, player_new
from workbook.paths import REPO_ROOT
from workbook.setup.liveserver import LiveServer

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("django_ready")]

PORTS = (8100, 8101)
ANSWERS = {q["id"]: q["answer"] for q in json.loads(
    (REPO_ROOT / "data" / "questions.json").read_text(encoding="utf-8"))}


@pytest.fixture
def servers():
    pair = [LiveServer("127.0.0.1", port, name=name) for port, name in
            zip(PORTS, ("game-a", "game-b"), strict=True)]
    for server in pair:
        server.stop(quiet=True)  # a leftover of an interrupted run
        server.start()
        if server.pid() is None:
            pytest.fail(f"port {server.port} is served by a server this test did not start; "
                        "stop it first")
    yield pair
    for server in pair:
        server.stop(quiet=True)


def room_new(host: dict, base: str, *, questions: int, seconds: float) -> str:
    reply = http("POST", "/api/rooms", {"questions": questions, "seconds": seconds},
                 ticket=host["ticket"], base=base)
    assert reply.status == 201, reply
    return reply.body["room_id"]


def driver_of(room_id: str, pair: list[LiveServer]) -> LiveServer:
    """The server whose log says it took the room's lease most recently."""
    latest: tuple[str, LiveServer] | None = None
    for server in pair:
        for line in server.log_file.read_text(errors="replace").splitlines():
            if re.search(rf"room {re.escape(room_id)}: now driven here", line):
                stamp = line[:23]
                if latest is None or stamp >= latest[0]:
                    latest = (stamp, server)
    assert latest is not None, "no server drives the room"
    return latest[1]


def right(q: dict) -> int:
    return ANSWERS[q["question_id"]]


def wrong(q: dict) -> int:
    return (right(q) + 1) % len(q["choices"])


async def join_all(players: list[dict], bases: list[list[str]], room_id: str) -> list[Bot]:
    bots = []
    for player, order in zip(players, bases, strict=True):
        bot = await Bot.join(player, room_id, bases=order)
        await bot.until("state")
        bots.append(bot)
    return bots


async def test_players_on_two_processes_play_one_game_with_identical_scores(servers, pools):
    from answer_game.selectors import answers_list

    a, b = (s.url for s in servers)
    players = [player_new(f"duo-{i}", base=a) for i in range(4)]
    room_id = room_new(players[0], a, questions=3, seconds=2)
    bots = await join_all(players, [[a], [b], [a], [b]], room_id)
    await bots[0].until("lobby", where=lambda f: len(f["players"]) == 4)
    await bots[0].send({"type": "start"})
    choosers = [right, wrong, right, lambda q: None if q["index"] == 1 else right(q)]
    finished = await asyncio.gather(*(bot.play(choose, timeout=30) for bot, choose in
                                      zip(bots, choosers, strict=True)))
    boards = {json.dumps(f["leaderboard"]) for f in finished}
    assert len(boards) == 1
    board = finished[0]["leaderboard"]
    # Every player saw the same reveals with the same scores, whichever process they were on.
    assert len({json.dumps([r["scores"] for r in bot.frames("reveal")]) for bot in bots}) == 1
    rows = await answers_list(room_id=room_id)
    assert {(r["question_id"], r["user_id"]) for r in rows} == {
        (q, bot.user_id) for bot in bots for q in bot.acked}
    assert len(rows) == 11
    assert {r["user_id"]: r["score"] for r in board} == {
        bot.user_id: sum(r["points"] for r in rows if r["user_id"] == bot.user_id)
        for bot in bots}
    assert board[-1]["user_id"] == players[1]["user_id"] and board[-1]["score"] == 0
    for base in (a, b):
        assert http("GET", f"/api/rooms/{room_id}/results", base=base).body["leaderboard"] == board
    for bot in bots:
        await bot.close()


async def test_when_the_driver_is_killed_the_other_process_finishes_the_game(servers, pools):
    from answer_game.selectors import answers_list

    a, b = (s.url for s in servers)
    players = [player_new(f"failover-{i}", base=a) for i in range(4)]
    room_id = room_new(players[0], a, questions=3, seconds=2)
    # The host connects first, to A: A takes the lease and drives the room.
    bots = await join_all(players, [[a, b], [b, a], [a, b], [b, a]], room_id)
    victim = driver_of(room_id, servers)
    survivor = servers[1] if victim is servers[0] else servers[0]
    assert victim is servers[0]
    await bots[0].until("lobby", where=lambda f: len(f["players"]) == 4)
    await bots[0].send({"type": "start"})

    # Question 1: everybody answers, the reveal comes at once.
    for bot in bots:
        q = await bot.until("question")
        await bot.answer(q["question_id"], right(q))
    reveals = [await bot.until("reveal") for bot in bots]
    scores_before = {s["user_id"]: s["score"] for s in reveals[0]["scores"]}
    assert all(v >= 500 for v in scores_before.values())

    # Question 2 opens; two players answer; then the driver's process dies (kill -9).
    q2 = [await bot.until("question", timeout=5) for bot in bots]
    for bot in bots[2:]:
        await bot.answer(q2[0]["question_id"], right(q2[0]))
        await bot.until("answer_ack")
    killed_at = time.monotonic()
    victim.kill()

    # Everyone plays on: A's players reconnect to B, B's players stay; nobody answers twice.
    finished = await asyncio.gather(*(bot.play(right, timeout=30) for bot in bots))
    took = time.monotonic() - killed_at
    assert driver_of(room_id, servers) is survivor
    assert [bot.reconnects > 0 for bot in bots] == [True, False, True, False]
    assert len({json.dumps(f["leaderboard"]) for f in finished}) == 1
    board = {r["user_id"]: r["score"] for r in finished[0]["leaderboard"]}
    assert all(board[uid] >= score for uid, score in scores_before.items())

    rows = await answers_list(room_id=room_id)
    assert len({(r["question_id"], r["user_id"]) for r in rows}) == len(rows)
    assert board == {bot.user_id: sum(r["points"] for r in rows if r["user_id"] == bot.user_id)
                     for bot in bots}
    before_kill = {(q2[0]["question_id"], bot.user_id) for bot in bots[2:]}
    assert before_kill <= {(r["question_id"], r["user_id"]) for r in rows}
    results = http("GET", f"/api/rooms/{room_id}/results", base=survivor.url)
    assert results.body["status"] == "finished"
    assert {r["user_id"]: r["score"] for r in results.body["leaderboard"]} == board
    assert took < 25
    for bot in bots:
        await bot.close()


async def test_a_graceful_stop_of_the_driver_hands_the_room_over_at_once(servers):
    a, b = (s.url for s in servers)
    players = [player_new(f"handover-{i}", base=a) for i in range(3)]
    room_id = room_new(players[0], a, questions=2, seconds=2)
    bots = await join_all(players, [[a, b], [b], [b]], room_id)
    assert driver_of(room_id, servers) is servers[0]
    await bots[0].send({"type": "start"})
    for bot in bots:
        q = await bot.until("question")
        await bot.answer(q["question_id"], right(q))
    before = {s["user_id"]: s["score"] for s in (await bots[1].until("reveal"))["scores"]}
    stopped = time.monotonic()
    servers[0].stop(quiet=True)  # SIGTERM: close websockets, release the lease
    finished = await asyncio.gather(*(bot.play(right, timeout=20) for bot in bots))
    assert driver_of(room_id, servers) is servers[1]
    assert time.monotonic() - stopped < 10
    board = {r["user_id"]: r["score"] for r in finished[0]["leaderboard"]}
    assert all(board[uid] >= score + 500 for uid, score in before.items())
    for bot in bots:
        await bot.close()
