"""Writes of the game: rooms, seats, answers, results (quiz_game), and the first snapshot."""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Sequence

import pymysql

from common.dbexecute import DB_OUTAGE_ERRORS, DBExecute, connection_lost, transaction

from . import store
from .rules import AnswerRecord, game_new, game_to_json
from .selectors import answer_get, players_list, questions_pick, room_get

QUESTIONS_MAX = 50
SECONDS_MIN, SECONDS_MAX = 1, 120
DUPLICATE_KEY = 1062


class RoomParamsError(ValueError):
    pass


def room_params_clean(body: dict) -> tuple[int, float]:
    """{"questions": int 1-50, "seconds": number 1-120}; nothing else."""
    extra = sorted(set(body) - {"questions", "seconds"})
    if extra:
        raise RoomParamsError(f"unknown field(s): {', '.join(extra)}")
    count, seconds = body.get("questions"), body.get("seconds")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= QUESTIONS_MAX:
        raise RoomParamsError(f"'questions' must be an integer 1-{QUESTIONS_MAX}")
    # The range test comes first: math.isfinite(10**400) raises OverflowError (int -> float).
    if (not isinstance(seconds, int | float) or isinstance(seconds, bool)
            or not SECONDS_MIN <= seconds <= SECONDS_MAX or not math.isfinite(seconds)):
        raise RoomParamsError(f"'seconds' must be a number {SECONDS_MIN}-{SECONDS_MAX}")
    return count, round(float(seconds), 3)


# A room's id is its code: read off a projector and typed on phones, so short, in capitals and
# digits without look-alikes (no 0/O, 1/I/L). 31**6, about 887 million codes; a clash draws again.
ROOM_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
ROOM_CODE_LENGTH = 6


class RoomNotFound(LookupError):
    pass


class RematchRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def room_id_new() -> str:
    """A fresh room code (also a valid channel-layer group name)."""
    return "".join(secrets.choice(ROOM_CODE_ALPHABET) for _ in range(ROOM_CODE_LENGTH))


async def room_create(*, host_id: int, questions: int, seconds: float,
                      seats: Sequence[tuple[int, str]] = ()) -> str:
    """A new room in its lobby, with `questions` questions drawn from the bank; `seats`
    (user_id, nickname) are seated already (a rematch)."""
    picked = await questions_pick(count=questions)
    if len(picked) < questions:
        raise RoomParamsError(f"the question bank has only {len(picked)} questions")
    for _ in range(5):
        room_id = room_id_new()
        try:
            async with transaction("game") as tx:
                await tx.execute(
                    "INSERT INTO room (id, host_id, questions, seconds) VALUES (%s, %s, %s, %s)",
                    (room_id, host_id, questions, seconds))
                for position, question in enumerate(picked):
                    await tx.execute(
                        "INSERT INTO room_question (room_id, position, question_id) "
                        "VALUES (%s, %s, %s)", (room_id, position, question.question_id))
                for user_id, nickname in seats:
                    await tx.execute(
                        "INSERT INTO player (room_id, user_id, nickname) VALUES (%s, %s, %s)",
                        (room_id, user_id, nickname))
        except pymysql.IntegrityError as exc:
            if exc.args[0] == DUPLICATE_KEY:
                continue  # that random id exists already: draw another
            raise
        game = game_new(room_id=room_id, host_id=host_id, seconds=seconds, questions=picked,
                        seats=seats)
        await store.snapshot_save(room_id=room_id, data=game_to_json(game, now=time.monotonic()))
        return room_id
    raise RuntimeError("could not draw a free room id")


async def room_rematch(*, room_id: str, host_id: int) -> tuple[str, bool]:
    """The room of a finished game's rematch, made on the first call: same number of questions
    (drawn again), same seconds, same host, every player of the game seated. (room id, made now).
    Refused unless `host_id` hosted the room and its game is over."""
    room = await room_get(room_id=room_id)
    if room is None:
        raise RoomNotFound(room_id)
    if int(room["host_id"]) != host_id:
        raise RematchRefused("not_host", "only the host can open a rematch")
    if room["status"] != "finished":
        raise RematchRefused("wrong_phase", "a rematch opens once the game is over")
    existing = await store.rematch_get(room_id=room_id)
    if existing is not None:
        return existing, False
    seats = [(int(row["user_id"]), row["nickname"])
             for row in await players_list(room_id=room_id)]
    new_id = await room_create(host_id=host_id, questions=int(room["questions"]),
                               seconds=float(room["seconds"]), seats=seats)
    winner = await store.rematch_set(room_id=room_id, rematch_id=new_id)
    return winner, winner == new_id  # a concurrent call's room won: its lobby stays unused


async def answer_store(*, room_id: str, record: AnswerRecord) -> bool:
    """INSERT the accepted answer. False if the row exists: the UNIQUE key (room, question,
    player) is the last word on duplicates, whichever driver asks.

    If the connection dies under the INSERT, it may or may not have committed: read the row back
    on a fresh connection. There: it is ours if it holds this record, else a duplicate. Not
    there: the INSERT never happened, so it is safe to try once more."""
    insert = DBExecute(
        "INSERT INTO answer (room_id, question_id, user_id, choice, correct, elapsed_ms, "
        "points) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (room_id, record.question_id, record.user_id, record.choice, record.correct,
         record.elapsed_ms, record.points), pool="game",
    )
    for attempt in range(2):
        try:
            await insert.execute()
            return True
        except pymysql.IntegrityError as exc:
            if exc.args[0] == DUPLICATE_KEY:
                return False
            raise
        except DB_OUTAGE_ERRORS as exc:
            if attempt or not connection_lost(exc):
                raise
        stored = await answer_get(room_id=room_id, question_id=record.question_id,
                                  user_id=record.user_id)
        if stored is not None:
            return (int(stored["choice"]), int(stored["points"])) == (record.choice,
                                                                     record.points)
    raise AssertionError("unreachable")


async def player_store(*, room_id: str, user_id: int, nickname: str) -> None:
    await DBExecute(
        "INSERT INTO player (room_id, user_id, nickname) VALUES (%s, %s, %s) "
        "ON DUPLICATE KEY UPDATE nickname = VALUES(nickname)",
        (room_id, user_id, nickname), pool="game", idempotent=True,
    ).execute()


async def room_status_set(*, room_id: str, status: str) -> None:
    await DBExecute("UPDATE room SET status = %s WHERE id = %s", (status, room_id),
                    pool="game", idempotent=True).execute()


async def results_store(*, room_id: str, leaderboard: list[dict]) -> None:
    async with transaction("game") as tx:
        for row in leaderboard:
            await tx.execute(
                "INSERT INTO result (room_id, user_id, nickname, score, `rank`) "
                "VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE score = VALUES(score), "
                "`rank` = VALUES(`rank`), nickname = VALUES(nickname)",
                (room_id, row["user_id"], row["nickname"], row["score"], row["rank"]))
        await tx.execute(
            "UPDATE room SET status = 'finished', finished_at = CURRENT_TIMESTAMP(3) "
            "WHERE id = %s", (room_id,))
