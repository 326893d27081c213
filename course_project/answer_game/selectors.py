"""Reads of the game (quiz_game) and of the question bank (quiz_study)."""

from __future__ import annotations

import json

from common.dbexecute import DBExecute

from .rules import Question


async def room_get(*, room_id: str) -> dict | None:
    return await DBExecute(
        "SELECT id AS room_id, host_id, questions, seconds, status FROM room WHERE id = %s",
        (room_id,), pool="game", rows="dict",
    ).fetchone()


async def players_list(*, room_id: str) -> list[dict]:
    """The room's seats (user_id, nickname), in the order they were taken."""
    return await DBExecute(
        "SELECT user_id, nickname FROM player WHERE room_id = %s ORDER BY joined_at, user_id",
        (room_id,), pool="game", rows="dict",
    ).fetchall()


async def questions_pick(*, count: int) -> list[Question]:
    """`count` distinct random questions of the bank."""
    rows = await DBExecute(
        "SELECT id, text, choices, answer FROM question ORDER BY RAND() LIMIT %s", (count,),
        rows="dict",
    ).fetchall()
    return [_question(row) for row in rows]


async def room_questions_get(*, room_id: str) -> list[Question]:
    """The room's questions in play order (positions in quiz_game, texts in quiz_study)."""
    ids = [row[0] for row in await DBExecute(
        "SELECT question_id FROM room_question WHERE room_id = %s ORDER BY position",
        (room_id,), pool="game",
    ).fetchall()]
    if not ids:
        return []
    marks = ", ".join(["%s"] * len(ids))
    rows = await DBExecute(
        f"SELECT id, text, choices, answer FROM question WHERE id IN ({marks})",  # noqa: S608
        tuple(ids), rows="dict",
    ).fetchall()
    by_id = {row["id"]: _question(row) for row in rows}
    return [by_id[qid] for qid in ids if qid in by_id]


def _question(row: dict) -> Question:
    return Question(question_id=int(row["id"]), text=row["text"],
                    choices=list(json.loads(row["choices"])), answer=int(row["answer"]))


async def answers_list(*, room_id: str) -> list[dict]:
    """Every accepted answer of the room, in play order, with the player's nickname."""
    rows = await DBExecute(
        "SELECT rq.position, a.question_id, a.user_id, p.nickname, a.choice, a.correct, "
        "a.elapsed_ms, a.points FROM answer a "
        "JOIN player p ON p.room_id = a.room_id AND p.user_id = a.user_id "
        "LEFT JOIN room_question rq ON rq.room_id = a.room_id AND rq.question_id = a.question_id "
        "WHERE a.room_id = %s ORDER BY rq.position, a.elapsed_ms, a.user_id",
        (room_id,), pool="game", rows="dict",
    ).fetchall()
    for row in rows:
        row["correct"] = bool(row["correct"])
    return rows


async def answer_get(*, room_id: str, question_id: int, user_id: int) -> dict | None:
    return await DBExecute(
        "SELECT choice, correct, elapsed_ms, points FROM answer "
        "WHERE room_id = %s AND question_id = %s AND user_id = %s",
        (room_id, question_id, user_id), pool="game", rows="dict",
    ).fetchone()


async def leaderboard_get(*, room_id: str) -> list[dict]:
    """The stored result of a finished room; for a running one, the scores so far."""
    stored = await DBExecute(
        "SELECT user_id, nickname, score, `rank` FROM result WHERE room_id = %s "
        "ORDER BY `rank`, score DESC, user_id", (room_id,), pool="game", rows="dict",
    ).fetchall()
    if stored:
        return stored
    rows = await DBExecute(
        "SELECT p.user_id, p.nickname, CAST(COALESCE(SUM(a.points), 0) AS UNSIGNED) AS score "
        "FROM player p LEFT JOIN answer a ON a.room_id = p.room_id AND a.user_id = p.user_id "
        "WHERE p.room_id = %s GROUP BY p.user_id, p.nickname ORDER BY score DESC, p.user_id",
        (room_id,), pool="game", rows="dict",
    ).fetchall()
    board: list[dict] = []
    for i, row in enumerate(rows):
        row["score"] = int(row["score"])
        rank = board[-1]["rank"] if board and board[-1]["score"] == row["score"] else i + 1
        board.append({**row, "rank": rank})
    return board


async def results_get(*, room_id: str) -> dict | None:
    room = await room_get(room_id=room_id)
    if room is None:
        return None
    return {"room_id": room["room_id"], "status": room["status"],
            "questions": room["questions"], "seconds": float(room["seconds"]),
            "leaderboard": await leaderboard_get(room_id=room_id),
            "answers": await answers_list(room_id=room_id)}
