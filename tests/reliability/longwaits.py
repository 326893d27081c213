"""The two checks that must wait a minute, run in a thread (with its own event loop) while the
other reliability tests run, so that the minute is spent once. Nothing else touches their rooms,
so the idle connection really receives nothing for the whole gap.

- idle: a player answers at once and then waits, sending and receiving nothing, while a slow
  player keeps the 65 s question open; the reveal and the next question must still reach it.
- silent: a client stops reading (no pongs, no close frame, the TCP connection stays up); the
  server's keepalive (uvicorn: ping every 20 s, 20 s to answer) must release its connection,
  keep its seat, and let it come back.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import traceback

from workbook.chapters.bots import Bot
from workbook.chapters.client import player_new, ws_open

from .support import room_new

IDLE_QUESTION_SECONDS = 65


async def idle_check(base: str) -> dict:
    host, slow = player_new("idle-host", base=base), player_new("idle-slow", base=base)
    room_id = room_new(host, base, questions=2, seconds=IDLE_QUESTION_SECONDS)
    idle = await Bot.join(host, room_id, bases=[base])
    other = await Bot.join(slow, room_id, bases=[base])
    await idle.until("lobby", where=lambda f: len(f["players"]) == 2)
    await idle.send({"type": "start"})
    q1 = await idle.until("question")
    await idle.answer(q1["question_id"], 0)
    await idle.until("progress", where=lambda f: f["answered"] == 1)
    quiet_since = time.monotonic()
    # `other` keeps the question open; it reads in the background so its socket drains.
    drain = asyncio.create_task(other.until("finished", timeout=IDLE_QUESTION_SECONDS * 3))
    first = await idle.recv(timeout=IDLE_QUESTION_SECONDS + 15)
    gap = time.monotonic() - quiet_since
    q2 = await idle.until("question", timeout=10)
    await idle.answer(q2["question_id"], 0)
    ack = await idle.until("answer_ack", timeout=10)
    drain.cancel()
    await asyncio.gather(drain, return_exceptions=True)
    await idle.close()
    await other.close()
    return {"gap_s": round(gap, 1), "first_after_gap": first["type"],
            "next_question_index": q2["index"], "acked_after_idle": ack["question_id"] ==
            q2["question_id"]}


async def silent_check(base: str) -> dict:
    host, ghost = player_new("silent-host", base=base), player_new("silent-ghost", base=base)
    room_id = room_new(host, base, questions=1, seconds=5)
    watcher = await Bot.join(host, room_id, bases=[base])
    path = f"/ws/game/controller/{room_id}/{ghost['user_id']}"
    # No client pings: the client must not notice (and close) by itself.
    frozen = await ws_open(path, ghost["ticket"], base=base, ping_interval=None)
    await watcher.until("lobby", where=lambda f: any(
        p["user_id"] == ghost["user_id"] and p["connected"] for p in f["players"]))
    frozen.transport.pause_reading()  # reads nothing more: the server's pings go unanswered
    went_silent = time.monotonic()
    released = await watcher.until("lobby", timeout=70, where=lambda f: any(
        p["user_id"] == ghost["user_id"] and not p["connected"] for p in f["players"]))
    after = time.monotonic() - went_silent
    back = await Bot.join(ghost, room_id, bases=[base])
    state = await back.until("state")
    frozen.transport.abort()
    await back.close()
    await watcher.close()
    return {"released_after_s": round(after, 1),
            "seat_kept": any(p["user_id"] == ghost["user_id"] for p in released["players"]),
            "back_as_player": state["you"]["player"] and any(
                p["user_id"] == ghost["user_id"] and p["connected"] for p in state["players"])}


class LongWaits:
    """Runs both checks in a background thread; `result()` waits for them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.outcome: dict = {}
        self.thread = threading.Thread(target=self._run, name="reliability-long-waits",
                                       daemon=True)
        self.started = time.monotonic()

    def start(self) -> LongWaits:
        self.thread.start()
        return self

    def _run(self) -> None:
        async def both() -> None:
            results = await asyncio.gather(idle_check(self.base), silent_check(self.base),
                                           return_exceptions=True)
            for name, result in zip(("idle", "silent"), results, strict=True):
                self.outcome[name] = result if isinstance(result, dict) else "".join(
                    traceback.format_exception(result))

        asyncio.run(both())

    def result(self, timeout: float = 150) -> dict:
        self.thread.join(timeout)
        if self.thread.is_alive():
            return {"idle": "still running", "silent": "still running"}
        return dict(self.outcome, waited_s=round(time.monotonic() - self.started, 1))


def dumps(outcome: dict) -> str:
    return json.dumps(outcome, indent=1)
