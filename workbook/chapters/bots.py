"""Scripted websocket players for the tests, the notebooks and classroom demos.

    bot = await Bot.join(player, room_id, bases=["http://127.0.0.1:8000"])
    await bot.send({"type": "start"})
    finished = await bot.play(choose=lambda q: 0)

A bot keeps every frame it received (`log`), answers each question once, and after a dropped
connection reconnects (trying `bases` in turn, as a player would reload the page on another
server) and answers again if the `state` frame shows the open question unanswered. An
`unavailable` error (Redis or MySQL away for a moment) makes it send the answer again shortly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidStatus

from workbook.chapters.client import ws_open, ws_recv_json, ws_send_json


@dataclass
class Bot:
    player: dict  # {"user_id", "nickname", "ticket"} from POST /api/players
    room_id: str
    bases: list[str]
    watch: bool = False
    ws: Any = None
    log: list[dict] = field(default_factory=list)
    acked: set[int] = field(default_factory=set)
    sent: dict[int, int] = field(default_factory=dict)  # question_id -> choice
    reconnects: int = 0
    retries: int = 0  # answers sent again after `unavailable`
    open_question: int | None = None  # the question_id open as far as this bot knows

    @property
    def user_id(self) -> int:
        return int(self.player["user_id"])

    @property
    def path(self) -> str:
        return (f"/ws/game/controller/{self.room_id}/{self.user_id}"
                + ("?watch=1" if self.watch else ""))

    @classmethod
    async def join(cls, player: dict, room_id: str, *, bases: list[str],
                   watch: bool = False) -> Bot:
        bot = cls(player, room_id, list(bases), watch)
        await bot.connect()
        return bot

    async def connect(self, *, attempts: int = 20) -> None:
        """Open the websocket on the first base that accepts, retrying with a short backoff."""
        last: Exception | None = None
        for attempt in range(attempts):
            base = self.bases[attempt % len(self.bases)]
            try:
                self.ws = await ws_open(self.path, self.player["ticket"], base=base,
                                        open_timeout=3)
                return
            except (OSError, TimeoutError, InvalidStatus) as exc:
                last = exc
                await asyncio.sleep(min(1.0, 0.1 * 2 ** attempt))
        raise ConnectionError(f"bot {self.user_id} could not connect: {last!r}")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def send(self, frame: dict) -> None:
        await ws_send_json(self.ws, frame)

    async def recv(self, *, timeout: float = 5.0, reconnect: bool = False) -> dict:
        """The next frame. With reconnect=True a dropped connection is opened again."""
        while True:
            try:
                frame = await ws_recv_json(self.ws, timeout)
            except ConnectionClosed:
                if not reconnect:
                    raise
                self.reconnects += 1
                await self.connect()
                continue
            self.log.append(frame)
            kind = frame.get("type")
            if kind == "answer_ack":
                self.acked.add(frame["question_id"])
            elif kind == "question":
                self.open_question = frame["question_id"]
            elif kind == "state":
                self.open_question = (frame["question"]["question_id"]
                                      if frame["phase"] == "question" else None)
            elif kind in ("reveal", "finished"):
                self.open_question = None
            return frame

    async def until(self, *types: str, timeout: float = 5.0,
                    where: Callable[[dict], bool] | None = None) -> dict:
        """Read frames until one of these types (and matching `where`) arrives."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"bot {self.user_id}: no {types} within {timeout} s; "
                                   f"last frames {[f.get('type') for f in self.log[-5:]]}")
            frame = await self.recv(timeout=left)
            if frame.get("type") in types and (where is None or where(frame)):
                return frame

    async def answer(self, question_id: int, choice: int) -> None:
        self.sent[question_id] = choice
        await self.send({"type": "answer", "question_id": question_id, "choice": choice})

    async def play(self, choose: Callable[[dict], int | None], *, timeout: float = 30.0,
                   reconnect: bool = True, retry_pause: float = 0.3) -> dict:
        """Answer every question with choose(question frame) (None: stay silent) until the
        game is finished; returns the `finished` frame."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"bot {self.user_id}: game not finished in {timeout} s")
            frame = await self.recv(timeout=left, reconnect=reconnect)
            kind = frame.get("type")
            if kind == "state" and frame["phase"] == "finished":
                return {"type": "finished", "leaderboard": frame["leaderboard"]}
            if kind == "finished":
                return frame
            question = frame if kind == "question" else None
            if kind == "state" and frame["phase"] == "question" and not frame["answered"]:
                question = frame["question"]
            if kind == "error" and frame.get("code") == "unavailable":
                await self._answer_again(retry_pause)
            if question is not None and question["question_id"] not in self.acked:
                choice = self.sent.get(question["question_id"])
                choice = choose(question) if choice is None else choice
                if choice is not None:
                    try:
                        await self.answer(question["question_id"], choice)
                    except ConnectionClosed:
                        pass  # the next recv() reconnects; its state frame says what to do

    async def _answer_again(self, pause: float) -> None:
        """The server could not take a frame: send the open question's answer again (if this
        bot answered it and has no ack), after a pause."""
        qid = self.open_question
        if qid is None or qid in self.acked or qid not in self.sent:
            return
        await asyncio.sleep(pause)
        self.retries += 1
        try:
            await self.answer(qid, self.sent[qid])
        except ConnectionClosed:
            pass  # the next recv() reconnects, and the state frame tells what to do

    def frames(self, kind: str) -> list[dict]:
        return [f for f in self.log if f.get("type") == kind]
