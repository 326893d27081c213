"""Lock-step fuzzing clients: send one generated frame, read until its reply, check the reply
against the oracle (fuzz.py), pace under the rate limit. Also the queries the checks need."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pymysql
from websockets.exceptions import ConnectionClosed

from course_project.config import config_get
from workbook.chapters.client import ws_open

from .fuzz import Frame, FrameGen, View, chat_expect, game_expect, parse

PACE = 1 / 15  # seconds between two frames of one client: under the 20/s rate limit
REPLY_TIMEOUT = 8.0


def shared_query(sql: str, params: tuple = ()) -> list[tuple]:
    """Read the shared MySQL (the live server's) as the app user."""
    cfg = config_get()
    with pymysql.connect(host=cfg.mysql_host, port=cfg.mysql_port, user=cfg.mysql_user,
                         password=cfg.mysql_password, autocommit=True) as conn, \
            conn.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


@dataclass
class Tally:
    """Frames tried and what came back, over all clients of a test."""

    frames: int = 0
    refusals: int = 0  # error frames and close codes
    accepted: int = 0  # acks and chat echoes
    dropped: int = 0  # frames over the rate limit (one rate_limited error covers them)
    codes: Counter = field(default_factory=Counter)
    phases: Counter = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)

    def judge(self, who: str, n: int, frame: Frame, expected: str, got: str,
              phase: str = "") -> None:
        self.frames += 1
        self.codes[got] += 1
        if phase:
            self.phases[phase] += 1
        if got.startswith(("error:", "close:")):
            self.refusals += 1
        else:
            self.accepted += 1
        if got != expected:
            raw = frame.raw if isinstance(frame.raw, str) else frame.raw.hex()
            self.mismatches.append(f"{who} frame #{n} ({frame.label}, phase {phase or '-'}): "
                                   f"expected {expected}, got {got}; raw {raw[:160]!r}")


async def send_frame(ws, frame: Frame) -> None:
    if frame.text:
        await ws.send(frame.raw)
    else:
        await ws.send(frame.raw, text=False)


@dataclass
class GameFuzzer:
    """One game connection that sends generated frames in lock-step."""

    name: str
    player: dict
    room_id: str
    base: str
    host: bool = False
    watch: bool = False
    ws: Any = None
    view: View | None = None
    log: list[dict] = field(default_factory=list)
    sent_answers: list[tuple[int, int]] = field(default_factory=list)  # (qid, choice) ack'd

    @property
    def user_id(self) -> int:
        return int(self.player["user_id"])

    async def connect(self) -> None:
        path = f"/ws/game/controller/{self.room_id}/{self.user_id}" + (
            "?watch=1" if self.watch else "")
        self.ws = await ws_open(path, self.player["ticket"], base=self.base, close_timeout=2)
        self.view = View(self.user_id, self.host, player=not self.watch)
        await self.until(lambda f: f.get("type") == "state")

    async def recv(self, timeout: float = REPLY_TIMEOUT, *, apply: bool = True) -> dict:
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.log.append(frame)
        if apply:
            assert self.view is not None
            self.view.apply(frame)
        return frame

    async def until(self, match, timeout: float = REPLY_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - time.monotonic()))
            if match(frame):
                return frame

    async def reply(self) -> dict:
        """The first error or ack; the broadcasts before it update the view on the way (the
        reply itself is applied by the caller, after judging it in that view)."""
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            frame = await self.recv(max(0.01, deadline - time.monotonic()), apply=False)
            if frame.get("type") in ("error", "answer_ack"):
                return frame
            assert self.view is not None
            self.view.apply(frame)

    async def run(self, gen: FrameGen, tally: Tally, stop: asyncio.Event,
                  start_after: float | None = None) -> None:
        """Fuzz until `stop`; the host sends the one valid start after `start_after` s."""
        assert self.view is not None
        began, n = time.monotonic(), 0
        while not stop.is_set():
            tick = time.monotonic()
            if start_after is not None and tick - began >= start_after:
                start_after = None
                await self.ws.send(json.dumps({"type": "start"}))
                await self.until(lambda f: f.get("type") == "question")
                continue
            frame = gen.game(self.view)
            n += 1
            await send_frame(self.ws, frame)
            try:
                got = await self.reply()
            except TimeoutError:
                tally.judge(self.name, n, frame, game_expect(frame, self.view), "no reply",
                            self.view.phase)
                return
            expected = game_expect(frame, self.view)
            code = "ack" if got["type"] == "answer_ack" else f"error:{got['code']}"
            tally.judge(self.name, n, frame, expected, code, self.view.phase)
            self.view.apply(got)
            if code == "ack":
                _, data = parse(frame)
                self.sent_answers.append((got["question_id"], data["choice"]))
            await asyncio.sleep(max(0.0, PACE - (time.monotonic() - tick)))

    async def drain(self, stop: asyncio.Event) -> None:
        """Read (and keep) frames until `stop`: a client that only listens."""
        while not stop.is_set():
            try:
                await self.recv(timeout=0.5)
            except TimeoutError:
                continue

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


@dataclass
class ChatFuzzer:
    name: str
    player: dict
    room: str
    base: str
    ws: Any = None
    sent: list[str] = field(default_factory=list)  # messages echoed back, in order

    @property
    def user_id(self) -> int:
        return int(self.player["user_id"])

    async def connect(self) -> None:
        self.ws = await ws_open(f"/ws/chat/{self.room}/", self.player["ticket"], base=self.base,
                                close_timeout=2)

    async def reply(self) -> dict:
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), REPLY_TIMEOUT))
            if frame.get("type") == "error" or frame.get("user_id") == self.user_id:
                return frame

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def run(self, gen: FrameGen, tally: Tally, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            tick = time.monotonic()
            frame = gen.chat()
            n += 1
            await send_frame(self.ws, frame)
            expected = chat_expect(frame)
            try:
                got = await self.reply()
            except TimeoutError:
                tally.judge(self.name, n, frame, expected, "no reply")
                return
            if got.get("type") == "error":
                tally.judge(self.name, n, frame, expected, f"error:{got['code']}")
            else:
                _, data = parse(frame)
                ok = data is not None and got["message"] == data.get("message")
                tally.judge(self.name, n, frame, expected, "message" if ok else "wrong echo")
                self.sent.append(got["message"])
            await asyncio.sleep(max(0.0, PACE - (time.monotonic() - tick)))


async def flood(ws, frames: list[str], listen: float = 2.0) -> tuple[list[dict], list[float]]:
    """Send every frame as fast as possible, then read for `listen` s. The frames received,
    and when each arrived (seconds since the first was sent)."""
    began = time.monotonic()
    for raw in frames:
        await ws.send(raw)
    replies, at = [], []
    deadline = time.monotonic() + listen
    while (left := deadline - time.monotonic()) > 0:
        try:
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
            at.append(time.monotonic() - began)
        except TimeoutError:
            break
    return replies, at


async def oversize_refused(path: str, ticket: str, base: str, payload: str | bytes,
                           text: bool) -> int | None:
    """Open a connection, send one frame, return the close code the server answered with."""
    ws = await ws_open(path, ticket, base=base, max_size=None)
    try:
        await ws.send(payload, text=text)
        while True:
            await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None
    except TimeoutError:
        return None
    finally:
        await ws.close()


def rng_for(seed: int, name: str) -> random.Random:
    return random.Random(f"{seed}/{name}")
