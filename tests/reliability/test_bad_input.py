"""Thousands of generated bad websocket frames against the chat and the game, in every phase."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from workbook.chapters.client import player_new

from .clients import ChatFuzzer, GameFuzzer, Tally, flood, oversize_refused, rng_for, shared_query
from .conftest import SEED
from .fuzz import FrameGen
from .support import rows_of

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.usefixtures("live_server")]

MIN_FRAMES = 5000
PLAYERS, CHATTERS = 11, 10  # lock-step fuzzers: the game's (plus host and watcher), the chat's
OVERSIZE = [("text", 4097), ("text", 8192), ("text", 65536), ("text", 1 << 20),
            ("text", 17 << 20), ("binary", 4097), ("binary", 1 << 20)]


def base() -> str:
    from course_project.config import config_get

    return config_get().server_url


async def _oversize_and_bad_utf8(path: str, ticket: str, tally: Tally) -> list[str]:
    """Each on its own connection: every oversize frame closes it with 1009, invalid UTF-8 in a
    text frame with 1007 (RFC 6455)."""
    wrong = []
    cases = [(kind, size, "x" * size if kind == "text" else b"\x00" * size)
             for kind, size in OVERSIZE]
    cases.append(("bad utf-8", 3, b"\xff\xfe\xfd"))
    for kind, size, payload in cases:
        code = await oversize_refused(path, ticket, base(), payload, text=kind != "binary")
        expected = 1007 if kind == "bad utf-8" else 1009
        tally.frames += 1
        tally.refusals += code is not None
        tally.codes[f"close:{code}"] += 1
        if code != expected:
            wrong.append(f"{path}: {kind} frame of {size} bytes closed with {code}, "
                         f"expected {expected}")
    return wrong


async def test_thousands_of_bad_frames_get_their_error_and_change_nothing(figures):
    """Tried: ~7,000 seeded frames (not JSON, JSON that is not an object, wrong and missing
    and extra fields, huge and negative numbers, NaN, unicode and control characters, lone
    surrogates, nesting past the recursion limit, binary frames) from 11 game connections in
    lock-step through lobby, three questions, their reveals and the finish, and from 8 chat
    connections; oversize frames up to 17 MiB and invalid UTF-8 on their own connections; a
    flood of one valid answer and of valid chat messages.
    Asserted: every frame got exactly the error code or close code the protocol documents, the
    stored answers are exactly the acknowledged ones, scores are their sums, every chat
    listener saw exactly the accepted messages, and the server logged no crash."""
    b = base()
    users = {name: player_new(f"fz-{name}", base=b) for name in
             ["host", *[f"p{i}" for i in range(PLAYERS)], "watch", "silent", "flood", "crash",
              *[f"c{i}" for i in range(CHATTERS)], "listen", "cflood"]}
    from .support import room_new

    room_id = room_new(users["host"], b, questions=4, seconds=2)
    chat_room = f"fuzz-{SEED}-{room_id}"
    tally = Tally()
    game = [GameFuzzer("host", users["host"], room_id, b, host=True),
            *[GameFuzzer(f"p{i}", users[f"p{i}"], room_id, b) for i in range(PLAYERS)],
            GameFuzzer("watch", users["watch"], room_id, b, watch=True)]
    silent = GameFuzzer("silent", users["silent"], room_id, b)
    flooder = GameFuzzer("flood", users["flood"], room_id, b)
    chats = [ChatFuzzer(f"c{i}", users[f"c{i}"], chat_room, b) for i in range(CHATTERS)]
    listener = ChatFuzzer("listen", users["listen"], chat_room, b)
    chat_flooder = ChatFuzzer("cflood", users["cflood"], chat_room, b)
    for client in [*game, silent, flooder, *chats, listener, chat_flooder]:
        await client.connect()

    stop, chat_stop, listen_stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
    heard: list[dict] = []

    async def listen() -> None:
        while not listen_stop.is_set():
            try:
                heard.append(json.loads(await asyncio.wait_for(listener.ws.recv(), 0.5)))
            except TimeoutError:
                continue

    async def game_flood() -> list[str]:
        """One player sends the same valid answer 300 times as fast as it can."""
        await flooder.until(lambda f: f.get("type") == "question", timeout=20)
        qid = flooder.view.question_id
        frame = json.dumps({"type": "answer", "question_id": qid, "choice": 1})
        replies, at = await flood(flooder.ws, [frame] * 300)
        for reply in replies:
            flooder.view.apply(reply)
        mine = [(r, t) for r, t in zip(replies, at, strict=True)
                if r["type"] in ("error", "answer_ack")]
        codes = [r.get("code", r["type"]) for r, _ in mine]
        took = mine[-1][1] if mine else 0.0  # the server's time to get through the flood
        tally.frames += 300
        tally.accepted += codes.count("answer_ack")
        tally.refusals += len(codes) - codes.count("answer_ack")
        tally.dropped += 300 - len(codes) + codes.count("rate_limited")
        wrong = []
        if codes.count("answer_ack") != 1 or codes[0] != "answer_ack":
            wrong.append(f"game flood: the first reply must be the one ack: {codes[:5]}")
        if not 1 <= codes.count("rate_limited") <= int(took) + 2:
            wrong.append(f"game flood: {codes.count('rate_limited')} rate_limited errors "
                         f"for {took:.2f} s of flooding")
        if set(codes) - {"answer_ack", "duplicate_answer", "rate_limited"}:
            wrong.append(f"game flood: unexpected replies {sorted(set(codes))}")
        if not 40 <= len(codes) - codes.count("rate_limited") <= 40 + 20 * took + 2:
            wrong.append(f"game flood: {len(codes)} frames admitted in {took:.2f} s")
        flooder.sent_answers.append((qid, 1))
        return wrong

    async def chat_flood() -> list[str]:
        frames = [json.dumps({"message": f"flood {i}"}) for i in range(300)]
        replies, at = await flood(chat_flooder.ws, frames)
        mine = [r for r in replies if r.get("user_id") == chat_flooder.user_id]
        errors = [r["code"] for r in replies if r.get("type") == "error"]
        took = max((t for r, t in zip(replies, at, strict=True)
                    if r.get("type") == "error" or r.get("user_id") == chat_flooder.user_id),
                   default=0.0)
        chat_flooder.sent = [r["message"] for r in mine]
        tally.frames += 300
        tally.accepted += len(mine)
        tally.refusals += len(errors)
        tally.dropped += 300 - len(mine)
        wrong = []
        numbers = [int(m["message"].split()[1]) for m in mine]
        if numbers[:40] != list(range(40)) or numbers != sorted(set(numbers)):
            wrong.append(f"chat flood: admitted messages out of order: {numbers[:60]}")
        if not 40 <= len(mine) <= 40 + 20 * took + 2 or not 1 <= len(errors) <= int(took) + 2 \
                or set(errors) != {"rate_limited"}:
            wrong.append(f"chat flood: {len(mine)} admitted, errors {errors} in {took:.2f} s")
        return wrong

    # Oversize frames first, while nothing else runs: each closes its connection, and with the
    # stock channel layer a consumer that ends can take a message of another one with it (see
    # test_churn.py); this test is about frames, that one about churn.
    oversize = [
        await _oversize_and_bad_utf8(f"/ws/chat/{chat_room}/", users["crash"]["ticket"], tally),
        await _oversize_and_bad_utf8(f"/ws/game/controller/{room_id}/{users['crash']['user_id']}",
                                     users["crash"]["ticket"], tally)]
    started = time.monotonic()
    background = [asyncio.create_task(silent.drain(stop)), asyncio.create_task(listen())]
    game_tasks = [asyncio.create_task(c.run(FrameGen(rng_for(SEED, c.name)), tally, stop,
                                            start_after=3.0 if c.view.host else None))
                  for c in game]
    chat_tasks = [asyncio.create_task(c.run(FrameGen(rng_for(SEED, c.name)), tally, chat_stop))
                  for c in chats]
    side = await asyncio.gather(game_flood(), chat_flood())
    # The game ends by itself (questions close at their deadline: `silent` never answers);
    # fuzz on for two seconds of `finished`, then stop everyone.
    host = game[0]
    deadline = time.monotonic() + 60
    while host.view.phase != "finished" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert host.view.phase == "finished", "the game did not finish"
    chat_stop.set()
    await asyncio.sleep(2.0)
    stop.set()
    await asyncio.gather(*game_tasks, *chat_tasks)
    await asyncio.sleep(0.5)  # the listener hears the last echoes
    listen_stop.set()
    await asyncio.gather(*background)
    await asyncio.gather(*(c.close() for c in [*game, silent, flooder, *chats, listener,
                                                chat_flooder]))

    # --- what was stored and broadcast ---
    rows = rows_of(shared_query, room_id)
    acked = {(qid, c.user_id): choice for c in [*game, flooder] for qid, choice in c.sent_answers}
    wrong = [w for found in [*oversize, *side] for w in found] + tally.mismatches
    if set(rows) != set(acked):
        wrong.append(f"stored answers {sorted(rows)} are not the acknowledged ones "
                     f"{sorted(acked)}")
    wrong += [f"stored choice {rows[k][0]} for {k}, acknowledged {v}" for k, v in acked.items()
              if k in rows and rows[k][0] != v]
    finished = next(f for f in host.log if f.get("type") == "finished")
    sums: dict[int, int] = {}
    for (_, uid), (_, points) in rows.items():
        sums[uid] = sums.get(uid, 0) + points
    board = {r["user_id"]: r["score"] for r in finished["leaderboard"]}
    if board != {uid: sums.get(uid, 0) for uid in board}:
        wrong.append(f"leaderboard {board} is not the sum of stored points {sums}")
    for client in game:
        for reveal in (f for f in client.log if f.get("type") == "reveal"):
            if client.watch:
                continue
            stored = rows.get((reveal["question_id"], client.user_id), (None, 0))[1]
            if reveal["points"] != stored:
                wrong.append(f"{client.name}: reveal says {reveal['points']} points for "
                             f"question {reveal['question_id']}, stored {stored}")
    seated = {int(u) for (u,) in shared_query(
        "SELECT user_id FROM quiz_game.player WHERE room_id = %s", (room_id,))}
    expected_seats = {c.user_id for c in [*game[:-1], silent, flooder]} | {
        users["crash"]["user_id"]}
    if seated != expected_seats:
        wrong.append(f"player rows {sorted(seated)} != {sorted(expected_seats)}")
    for client in [*chats, chat_flooder]:
        got = [m["message"] for m in heard if m.get("user_id") == client.user_id]
        if got != client.sent:
            wrong.append(f"listener heard {len(got)} messages of {client.name}; "
                         f"{len(client.sent)} were accepted")
    figures.report("bad websocket frames", frames=tally.frames, refusals=tally.refusals,
                   accepted=tally.accepted, rate_limited_drops=tally.dropped,
                   mismatches=len(wrong), rows_lost=len(set(acked) - set(rows)),
                   phases=dict(tally.phases), seconds=round(time.monotonic() - started, 1))
    assert not wrong, f"{len(wrong)} problems (seed {SEED}):\n" + "\n".join(wrong[:30])
    assert tally.frames >= MIN_FRAMES
    assert min(tally.phases[p] for p in ("lobby", "question", "reveal", "finished")) >= 100, \
        tally.phases
