"""DBExecute: the guide's small query helper, with pooling, parameters and transactions done right.

    row = await DBExecute("SELECT nickname FROM user WHERE id=%s", (uid,)).fetchone()
    rows = await DBExecute(sql, params, pool="game", rows="dict").fetchall()
    done = await DBExecute("INSERT ...", params, pool="game").execute()   # lastrowid, rowcount
    async with transaction("game") as tx:
        await tx.execute("INSERT ...", params)
        await tx.execute("UPDATE ...", params)   # both or neither

SQL text is always a constant; values only ever travel as parameters (a tuple or a mapping of
scalars), which the driver escapes. The connection goes back to the pool after each call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import aiomysql

from .db import PoolName, pool_get

Params = Sequence[Any] | Mapping[str, Any] | None
RowType = Literal["tuple", "dict"]


@dataclass(frozen=True)
class ExecuteResult:
    lastrowid: int
    rowcount: int


def _check_params(params: Params) -> Params:
    if params is None or isinstance(params, (tuple, list, Mapping)):
        return params
    # The guide passed a bare value (`cur.execute(sql, uid)`); that only works by accident for
    # one %s and a str. Insist on a sequence or a mapping so the placeholders line up.
    raise TypeError(f"params must be a tuple, list or mapping, not {type(params).__name__}")


class DBExecute:
    def __init__(
        self, sql: str, params: Params = None, *, pool: PoolName = "study", rows: RowType = "tuple"
    ) -> None:
        if rows not in ("tuple", "dict"):
            raise ValueError("rows must be 'tuple' or 'dict'")
        self.sql = sql
        self.params = _check_params(params)
        self.pool = pool
        self.rows = rows

    def _cursor_class(self) -> type[aiomysql.Cursor]:
        return aiomysql.DictCursor if self.rows == "dict" else aiomysql.Cursor

    async def fetchone(self) -> tuple | dict | None:
        async with pool_get(self.pool).acquire() as conn:
            async with conn.cursor(self._cursor_class()) as cur:
                await cur.execute(self.sql, self.params)
                return await cur.fetchone()

    async def fetchall(self) -> list[tuple] | list[dict]:
        async with pool_get(self.pool).acquire() as conn:
            async with conn.cursor(self._cursor_class()) as cur:
                await cur.execute(self.sql, self.params)
                return list(await cur.fetchall())

    async def execute(self) -> ExecuteResult:
        async with pool_get(self.pool).acquire() as conn:
            async with conn.cursor() as cur:
                await cur.execute(self.sql, self.params)
                return ExecuteResult(lastrowid=cur.lastrowid, rowcount=cur.rowcount)


class Transaction:
    """Statements on one connection, committed together by `transaction()`."""

    def __init__(self, conn: aiomysql.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Params = None) -> ExecuteResult:
        async with self.conn.cursor() as cur:
            await cur.execute(sql, _check_params(params))
            return ExecuteResult(lastrowid=cur.lastrowid, rowcount=cur.rowcount)

    async def fetchall(self, sql: str, params: Params = None, *, rows: RowType = "tuple") -> list:
        cls = aiomysql.DictCursor if rows == "dict" else aiomysql.Cursor
        async with self.conn.cursor(cls) as cur:
            await cur.execute(sql, _check_params(params))
            return list(await cur.fetchall())


@asynccontextmanager
async def transaction(pool: PoolName = "study") -> AsyncIterator[Transaction]:
    """BEGIN ... COMMIT, or ROLLBACK if the block raises. The pool runs in autocommit mode, so a
    transaction must be opened explicitly; a connection is never returned with one still open."""
    async with pool_get(pool).acquire() as conn:
        await conn.begin()
        try:
            yield Transaction(conn)
        except BaseException:
            await conn.rollback()
            raise
        await conn.commit()
