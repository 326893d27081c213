"""DBExecute: the guide's small query helper, with pooling, parameters and transactions done right.

    row = await DBExecute("SELECT nickname FROM user WHERE id=%s", (uid,)).fetchone()
    rows = await DBExecute(sql, params, pool="game", rows="dict").fetchall()
    done = await DBExecute("INSERT ...", params, pool="game").execute()   # lastrowid, rowcount
    async with transaction("game") as tx:
        await tx.execute("INSERT ...", params)
        await tx.execute("UPDATE ...", params)   # both or neither

SQL text is always a constant; values only ever travel as parameters (a tuple or a mapping of
scalars), which the driver escapes. The connection goes back to the pool after each call.

A pooled connection can die under a query (the server restarted, or killed it). Reads run again
on a fresh connection; so do writes marked `idempotent=True` (an upsert, an UPDATE to a fixed
value). A plain INSERT is not retried: it may have committed before the connection died.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import aiomysql
import pymysql

from .db import PoolName, pool_get

log = logging.getLogger(__name__)

Params = Sequence[Any] | Mapping[str, Any] | None
RowType = Literal["tuple", "dict"]

# What MySQL being away raises. Of these, a lost connection (killed, server gone, dropped during
# the query) is worth one more try on another pooled connection.
DB_OUTAGE_ERRORS = (pymysql.err.OperationalError, pymysql.err.InterfaceError)
LOST_CONNECTION = frozenset({1927, 2006, 2013, 2055, 4031})
RETRIES = 2


def connection_lost(exc: BaseException) -> bool:
    if isinstance(exc, pymysql.err.InterfaceError):  # aiomysql: "(0, 'Not connected')"
        return True
    return (isinstance(exc, pymysql.err.OperationalError) and bool(exc.args)
            and exc.args[0] in LOST_CONNECTION)


def _retry_worth(exc: BaseException, *, what: str) -> bool:
    """True (and one log line) if `exc` is a lost connection, which another try may cure."""
    if not connection_lost(exc):
        return False
    reason = exc.args[0] if exc.args else exc
    log.warning("MySQL connection lost during %s (%s); trying a fresh one", what, reason)
    return True


@dataclass(frozen=True)
class ExecuteResult:
    lastrowid: int
    rowcount: int


def _check_params(params: Params) -> Params:
    if params is None or isinstance(params, (tuple, list, Mapping)):
        return params
    # A bare value works only for a statement with exactly one %s, and None silently means "no
    # parameters" (a literal %s reaches MySQL). A sequence or a mapping lines the placeholders up.
    raise TypeError(f"params must be a tuple, list or mapping, not {type(params).__name__}")


class DBExecute:
    def __init__(
        self, sql: str, params: Params = None, *, pool: PoolName = "study", rows: RowType = "tuple",
        idempotent: bool = False,
    ) -> None:
        if rows not in ("tuple", "dict"):
            raise ValueError("rows must be 'tuple' or 'dict'")
        self.sql = sql
        self.params = _check_params(params)
        self.pool = pool
        self.rows = rows
        self.idempotent = idempotent  # execute() may run twice if its connection dies

    def _cursor_class(self) -> type[aiomysql.Cursor]:
        return aiomysql.DictCursor if self.rows == "dict" else aiomysql.Cursor

    def _cursor(self, conn: aiomysql.Connection) -> aiomysql.Cursor:
        # conn.cursor() without a class skips aiomysql's subclass check: the common case.
        return conn.cursor(aiomysql.DictCursor) if self.rows == "dict" else conn.cursor()

    # The retries are inline, not a wrapper: a closure and a helper coroutine would add two
    # frames to every resumption of every query (tests/benchmarks/bench_db.py measures lookups).
    async def fetchone(self) -> tuple | dict | None:
        for attempt in range(RETRIES + 1):
            try:
                async with pool_get(self.pool).acquire() as conn:
                    async with self._cursor(conn) as cur:
                        await cur.execute(self.sql, self.params)
                        return await cur.fetchone()
            except DB_OUTAGE_ERRORS as exc:
                if attempt == RETRIES or not _retry_worth(exc, what="a read"):
                    raise
        raise AssertionError("unreachable")

    async def fetchall(self) -> list[tuple] | list[dict]:
        for attempt in range(RETRIES + 1):
            try:
                async with pool_get(self.pool).acquire() as conn:
                    async with self._cursor(conn) as cur:
                        await cur.execute(self.sql, self.params)
                        return list(await cur.fetchall())
            except DB_OUTAGE_ERRORS as exc:
                if attempt == RETRIES or not _retry_worth(exc, what="a read"):
                    raise
        raise AssertionError("unreachable")

    async def execute(self) -> ExecuteResult:
        for attempt in range(RETRIES + 1):
            try:
                async with pool_get(self.pool).acquire() as conn:
                    async with conn.cursor() as cur:
                        await cur.execute(self.sql, self.params)
                        return ExecuteResult(lastrowid=cur.lastrowid, rowcount=cur.rowcount)
            except DB_OUTAGE_ERRORS as exc:
                if (attempt == RETRIES or not self.idempotent
                        or not _retry_worth(exc, what="an idempotent write")):
                    raise
        raise AssertionError("unreachable")


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
