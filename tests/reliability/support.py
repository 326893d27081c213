"""Helpers the reliability tests share: rooms, seated bots, the right answers, stored rows."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from workbook.chapters.bots import Bot
from workbook.chapters.client import http, player_new
from workbook.paths import REPO_ROOT

ANSWERS = {q["id"]: q["answer"] for q in json.loads(
    (REPO_ROOT / "data" / "questions.json").read_text(encoding="utf-8"))}


def right(q: dict) -> int:
    return ANSWERS[q["question_id"]]


def wrong(q: dict) -> int:
    return (right(q) + 1) % len(q["choices"])


def room_new(host: dict, base: str, *, questions: int, seconds: float) -> str:
    reply = http("POST", "/api/rooms", {"questions": questions, "seconds": seconds},
                 ticket=host["ticket"], base=base)
    assert reply.status == 201, reply
    return reply.body["room_id"]


def players_new(prefix: str, count: int, base: str) -> list[dict]:
    return [player_new(f"{prefix}-{i}", base=base) for i in range(count)]


async def seated(players: list[dict], room_id: str, bases: list[list[str]],
                 watch: bool = False) -> list[Bot]:
    """Each player joins (on its own list of servers) and has its `state` frame."""
    bots = []
    for player, order in zip(players, bases, strict=True):
        bot = await Bot.join(player, room_id, bases=order, watch=watch)
        await bot.until("state")
        bots.append(bot)
    return bots


@dataclass
class Question2:
    """Where `to_question_2` leaves a game: question 1's reveals, question 2's frame and when
    every player had it."""

    reveals: list[dict]
    question: dict
    opened_at: float


async def to_question_2(bots: list[Bot], *, timeout: float = 6) -> Question2:
    """The host (bots[0]) starts once every bot is in the lobby; everyone answers question 1
    right; once question 2 is open for everyone, the first two answer it and have their acks."""
    await bots[0].until("lobby", where=lambda f: len(f["players"]) == len(bots))
    await bots[0].send({"type": "start"})
    for bot in bots:
        q = await bot.until("question")
        await bot.answer(q["question_id"], right(q))
    reveals = [await bot.until("reveal") for bot in bots]
    q2 = [await bot.until("question", timeout=timeout) for bot in bots][0]
    opened_at = time.monotonic()
    for bot in bots[:2]:
        await bot.answer(q2["question_id"], right(q2))
        await bot.until("answer_ack")
    return Question2(reveals, q2, opened_at)


async def close_all(bots: list[Bot]) -> None:
    await asyncio.gather(*(b.close() for b in bots), return_exceptions=True)


ANSWER_ROWS = ("SELECT question_id, user_id, choice, points FROM quiz_game.answer "
               "WHERE room_id = %s")


def rows_of(query: Callable[[str, tuple], list[tuple]],
            room_id: str) -> dict[tuple[int, int], tuple[int, int]]:
    """(question_id, user_id) -> (choice, points) of every stored answer of the room."""
    rows = query(ANSWER_ROWS, (room_id,))
    out = {}
    for qid, uid, choice, points in rows:
        assert (qid, uid) not in out, f"two rows for question {qid}, user {uid}"
        out[(int(qid), int(uid))] = (int(choice), int(points))
    return out


def scores_from(rows: dict[tuple[int, int], tuple[int, int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for (_, uid), (_, points) in rows.items():
        out[uid] = out.get(uid, 0) + points
    return out


@dataclass
class Ledger:
    """What clients were told about their answers: acks (and who got an ack twice)."""

    acks: dict[tuple[int, int], int] = field(default_factory=dict)  # (qid, uid) -> count
    choices: dict[tuple[int, int], int] = field(default_factory=dict)  # choice of the ack'd frame

    def add_bot(self, bot: Bot) -> None:
        for frame in bot.frames("answer_ack"):
            key = (frame["question_id"], bot.user_id)
            self.acks[key] = self.acks.get(key, 0) + 1
            self.choices.setdefault(key, bot.sent[frame["question_id"]])

    def lost(self, rows: dict) -> list[tuple[int, int]]:
        """Acknowledged answers that are not stored."""
        return sorted(k for k in self.acks if k not in rows)


class Timer:
    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def first_after(bots: list[Bot], at: float, stamps: dict[int, list[tuple[float, str]]],
                kind: str) -> float | None:
    """When the first `kind` frame reached one of these bots after `at` (monotonic)."""
    return min((t for bot in bots for t, k in stamps.get(bot.user_id, []) if t > at and k == kind),
               default=None)


def stamp_frames(bots: list[Bot]) -> dict[int, list[tuple[float, str]]]:
    """Record when each bot receives each frame (wraps Bot.recv)."""
    stamps: dict[int, list[tuple[float, str]]] = {}
    for bot in bots:
        original = bot.recv

        async def recv(*a, _bot=bot, _original=original, **kw):
            frame = await _original(*a, **kw)
            stamps.setdefault(_bot.user_id, []).append((time.monotonic(), frame.get("type")))
            return frame

        bot.recv = recv
    return stamps


def check_stored(stack, room_id: str, bots: list[Bot], finished: dict) -> dict:
    """Every ack is one row with the acknowledged choice; the leaderboard is the rows' sum."""
    rows = rows_of(stack.query, room_id)
    ledger = Ledger()
    for bot in bots:
        ledger.add_bot(bot)
    lost = ledger.lost(rows)
    assert not lost, f"acknowledged answers not stored: {lost}"
    assert all(n == 1 for n in ledger.acks.values()), f"acknowledged twice: {ledger.acks}"
    assert all(rows[k][0] == c for k, c in ledger.choices.items()), (rows, ledger.choices)
    board = {r["user_id"]: r["score"] for r in finished["leaderboard"]}
    sums = scores_from(rows)
    assert board == {uid: sums.get(uid, 0) for uid in board}, (board, sums)
    return {"rows": len(rows), "acks": len(ledger.acks), "rows_lost": len(lost)}
