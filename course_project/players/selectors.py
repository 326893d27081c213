from __future__ import annotations

from common.dbexecute import DBExecute


async def user_get(*, user_id: int) -> dict | None:
    """The guide's get_user_id_by_uid lookup: one row from the study database, or None."""
    return await DBExecute(
        "SELECT id AS user_id, nickname FROM user WHERE id = %s", (user_id,), rows="dict"
    ).fetchone()
