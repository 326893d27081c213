"""Faults under a running game, on the private stack: Redis restarted, MySQL connections killed,
a uvicorn process killed, a client that vanishes. Each test asserts that nothing was lost."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from answer_game import rules
from workbook.chapters.bots import Bot
from workbook.chapters.client import http

from .conftest import STOCK_LAYER_CLEANER
from .support import (
    check_stored,
    close_all,
    first_after,
    players_new,
    right,
    room_new,
    seated,
    stamp_frames,
    to_question_2,
    wrong,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.mark.parametrize("layer", ["redis", "inbox"])
async def test_a_redis_restart_mid_game_loses_no_accepted_answer(stack, figures, server_logs,
                                                                layer):
    """Tried: 4 players on two uvicorn processes (channel layer `layer`); question 1 answered
    by all; in question 2 two players answered, then Redis is killed (-9), the other two answer
    into the outage, and Redis starts again empty one second later.
    Asserted: no websocket was dropped, the game resumed within 5 s of Redis coming back and
    finished, every acknowledged answer is one stored row with its choice, and the final
    scores are the sums of the stored points."""
    server_logs.allow.append(STOCK_LAYER_CLEANER)  # every stock-layer server sees the outage
    a, b = (s.url for s in stack.servers_up(["a", "b"], layer=layer))
    players = players_new(f"redis-{layer}", 4, a)
    room_id = room_new(players[0], a, questions=4, seconds=10)
    bots = await seated(players, room_id, [[a, b], [b, a], [a, b], [b, a]])
    stamps = stamp_frames(bots)
    q2 = (await to_question_2(bots)).question

    stack.redis.kill()
    await asyncio.sleep(0.3)
    for bot in bots[2:]:  # into the outage: `unavailable`, then the bot tries again
        await bot.answer(q2["question_id"], right(q2))
    await asyncio.sleep(0.7)
    stack.redis.start()
    back = time.monotonic()
    finished = await asyncio.gather(*(bot.play(right, timeout=60) for bot in bots))
    # Their answers went in during the outage: their acks say when the game was back.
    resumed = first_after(bots[2:], back, stamps, "answer_ack")
    result = check_stored(stack, room_id, bots, finished[0])
    await close_all(bots)
    figures.report(f"redis restart mid-game ({layer} layer)", faults=1,
                   reconnects=sum(b.reconnects for b in bots),
                   retries=sum(b.retries for b in bots),
                   acked_after_restart_s=round(resumed - back, 2) if resumed else None, **result)
    assert len({str(f["leaderboard"]) for f in finished}) == 1
    assert [b.reconnects for b in bots] == [0, 0, 0, 0]
    assert resumed is not None and resumed - back < 5.0
    assert result["rows"] == 16


async def test_killed_mysql_connections_are_replaced_and_each_answer_is_stored_once(
        stack, figures):
    """Tried: a 4-player, 5-question game while MariaDB kills every connection of the app
    user every 50 ms (KILL CONNECTION, as an admin or a failover would), and a reader asks
    for a user and the room's results 10 times a second meanwhile.
    Asserted: the game finished, every acknowledged answer is exactly one stored row, scores
    are the stored sums, no HTTP read failed with a 5xx other than a 503 `unavailable`, and
    the pools answer normally once the killing stops."""
    a = stack.server("a").url
    players = players_new("mysql-kill", 4, a)
    room_id = room_new(players[0], a, questions=5, seconds=4)
    bots = await seated(players, room_id, [[a]] * 4)
    await bots[0].until("lobby", where=lambda f: len(f["players"]) == 4)
    stop = threading.Event()
    killed = [0]

    def killer() -> None:
        with stack.mysql_admin() as conn, conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("SELECT id FROM information_schema.processlist "
                            "WHERE user = 'quiz_app'")
                for (cid,) in cur.fetchall():
                    try:
                        cur.execute(f"KILL CONNECTION {int(cid)}")
                        killed[0] += 1
                    except Exception:  # noqa: BLE001 - it ended by itself meanwhile
                        pass
                time.sleep(0.05)

    reads: dict[int, int] = {}

    async def reader() -> None:
        while not stop.is_set():
            for path in (f"/api/user?uid={players[1]['user_id']}",
                         f"/api/rooms/{room_id}/results"):
                status = (await asyncio.to_thread(http, "GET", path, base=a)).status
                reads[status] = reads.get(status, 0) + 1
            await asyncio.sleep(0.1)

    thread = threading.Thread(target=killer)
    thread.start()
    read_task = asyncio.create_task(reader())
    try:
        await bots[0].send({"type": "start"})
        finished = await asyncio.gather(*(bot.play(right, timeout=60) for bot in bots))
    finally:
        stop.set()
        thread.join()
        await read_task
    after = http("GET", f"/api/rooms/{room_id}/results", base=a)
    health = http("GET", "/api/health", base=a)
    result = check_stored(stack, room_id, bots, finished[0])
    await close_all(bots)
    figures.report("mysql connections killed mid-game", faults=killed[0],
                   retries=sum(b.retries for b in bots), reads=reads, **result)
    assert killed[0] >= 10, "the killer found nothing to kill"
    assert set(reads) <= {200, 503} and reads.get(200, 0) > reads.get(503, 0), reads
    assert after.status == 200 and after.body["status"] == "finished"
    assert health.body["status"] == "ok"
    assert result["rows"] == 20


@pytest.mark.parametrize("layer", ["redis", "inbox"])
async def test_players_of_a_killed_process_finish_the_game_on_the_other(stack, figures, layer):
    """Tried: 4 players, two on each of two uvicorn processes (channel layer `layer`); the one
    driving the room is killed (-9) in question 2, after two players answered it.
    Asserted: its players reconnect to the other process and everyone finishes the game with
    the scores earned before the kill plus the rest, every acknowledged answer is one stored
    row, the scores are the stored sums."""
    servers = stack.servers_up(["a", "b"], layer=layer)
    a, b = (s.url for s in servers)
    players = players_new(f"proc-kill-{layer}", 4, a)
    # Question 2 must outlive the takeover (3 s lease, 2 s for its driver to come back, up to
    # 1 s to the next watch round) plus however long the answers before the kill took on a busy
    # machine. Every player answers at once, so each question closes early: 30 s costs no time.
    room_id = room_new(players[0], a, questions=3, seconds=30)
    bots = await seated(players, room_id, [[a, b], [b, a], [a, b], [b, a]])
    at_q2 = await to_question_2(bots)
    before = {s["user_id"]: s["score"] for s in at_q2.reveals[0]["scores"]}
    q2_at = at_q2.opened_at
    killed_at = time.monotonic()
    servers[0].kill()  # A drives: the host joined there first
    finished = await asyncio.gather(*(bot.play(right, timeout=40) for bot in bots))
    took = time.monotonic() - killed_at
    result = check_stored(stack, room_id, bots, finished[0])
    await close_all(bots)
    board = {r["user_id"]: r["score"] for r in finished[0]["leaderboard"]}
    figures.report(f"uvicorn process killed mid-game ({layer} layer)", faults=1,
                   reconnects=[b.reconnects for b in bots], finished_after_s=round(took, 1),
                   **result)
    assert [b.reconnects > 0 for b in bots] == [True, False, True, False]
    assert all(board[uid] >= score + 500 for uid, score in before.items()), (before, board)
    assert result["rows"] == 12, (
        f"{result['rows']} rows: question 2 was open {killed_at - q2_at:.1f} s before the kill "
        f"and the game finished {took:.1f} s after it")


async def test_a_vanished_client_keeps_its_seat_and_its_connection_is_released(stack, figures):
    """Tried: in a 3-player game, after question 1, one player's TCP connection is torn down
    without a close frame (RST) while question 2 is open.
    Asserted: the seat is held for the grace period (rules.SEAT_GRACE: a reload or a blip is
    not a departure), then released (progress counts 2 players); question 2 then closes as soon
    as the two connected players answered (nobody waits for the ghost), the ghost keeps its
    seat and its points in the reveal, and when it comes back it gets `state` with its score,
    as a connected player."""
    a = stack.server("a").url
    players = players_new("vanish", 3, a)
    room_id = room_new(players[0], a, questions=3, seconds=20)
    bots = await seated(players, room_id, [[a]] * 3)
    host, ghost, third = bots
    await host.until("lobby", where=lambda f: len(f["players"]) == 3)
    await host.send({"type": "start"})
    for bot in bots:
        q = await bot.until("question")
        await bot.answer(q["question_id"], right(q))
    scored = {s["user_id"]: s["score"] for s in (await host.until("reveal"))["scores"]}
    q2 = await host.until("question", timeout=6)
    ghost.ws.transport.abort()  # no close frame: the socket just dies
    dropped = time.monotonic()
    gone = await host.until("progress", where=lambda f: f["total"] == 2,
                            timeout=rules.SEAT_GRACE + 5)
    held = time.monotonic() - dropped
    opened = time.monotonic()
    await host.answer(q2["question_id"], right(q2))
    await third.answer(q2["question_id"], wrong(q2))
    reveal = await host.until("reveal", timeout=5)
    early = time.monotonic() - opened
    back = await Bot.join(players[1], room_id, bases=[a])
    state = await back.until("state")
    await close_all([host, third, back])
    ghost_score = {s["user_id"]: s["score"] for s in reveal["scores"]}[ghost.user_id]
    figures.report("client vanished without a close frame", faults=1, rows_lost=0,
                   seat_held_s=round(held, 2), closed_early_after_s=round(early, 2))
    assert gone["question_id"] == q2["question_id"] and gone["answered"] == 0
    assert rules.SEAT_GRACE - 0.5 <= held < rules.SEAT_GRACE + 3, f"seat held {held:.2f} s"
    assert early < 3, "the question waited for the vanished player"
    assert ghost_score == scored[ghost.user_id] >= 500 and reveal["question_id"] == q2[
        "question_id"]
    assert state["you"] == {"user_id": ghost.user_id, "player": True, "score": ghost_score}
    assert [p["connected"] for p in state["players"] if p["user_id"] == ghost.user_id] == [True]
