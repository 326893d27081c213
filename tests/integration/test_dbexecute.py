"""DBExecute and the pools against the real MySQL (no mocks)."""

import pytest

from common.db import PoolsNotOpen, pool_get, pools_close, pools_open, pools_stats
from common.dbexecute import DBExecute, transaction

pytestmark = pytest.mark.usefixtures("pools")


async def test_fetchone_returns_a_tuple_by_default():
    assert await DBExecute("SELECT id, nickname FROM user WHERE id = %s", (1,)).fetchone() == (
        1,
        "小明",
    )


async def test_fetchone_returns_a_dict_when_asked():
    row = await DBExecute(
        "SELECT id, nickname FROM user WHERE id = %s", (1,), rows="dict"
    ).fetchone()
    assert row == {"id": 1, "nickname": "小明"}


async def test_fetchone_returns_none_for_no_row():
    assert await DBExecute("SELECT id FROM user WHERE id = %s", (0,)).fetchone() is None


async def test_fetchall_reads_the_seeded_users():
    rows = await DBExecute("SELECT id FROM user WHERE id <= %s ORDER BY id", (5,)).fetchall()
    assert rows == [(1,), (2,), (3,), (4,), (5,)]


async def test_a_mapping_of_parameters_works():
    row = await DBExecute("SELECT nickname FROM user WHERE id = %(uid)s", {"uid": 2}).fetchone()
    assert row == ("Ada",)


async def test_a_bare_scalar_parameter_is_refused_before_it_reaches_mysql():
    with pytest.raises(TypeError):
        DBExecute("SELECT nickname FROM user WHERE id = %s", 1)


async def test_execute_reports_lastrowid_and_rowcount_and_injection_is_stored_as_data():
    evil = "x'); DROP TABLE user; --"
    done = await DBExecute("INSERT INTO user (nickname) VALUES (%s)", (evil,)).execute()
    assert done.rowcount == 1 and done.lastrowid > 5
    back = await DBExecute("SELECT nickname FROM user WHERE id = %s", (done.lastrowid,)).fetchone()
    assert back == (evil,)
    gone = await DBExecute("DELETE FROM user WHERE id = %s", (done.lastrowid,)).execute()
    assert gone.rowcount == 1


async def test_the_study_and_game_pools_reach_their_own_databases():
    study = await DBExecute("SELECT DATABASE()").fetchone()
    game = await DBExecute("SELECT DATABASE()", pool="game").fetchone()
    assert study != game and game[0].endswith("game")


async def test_a_transaction_commits_all_statements_together():
    async with transaction("game") as tx:
        await tx.execute(
            "INSERT INTO player (room_id, user_id, nickname) VALUES (%s, %s, %s)",
            ("t-commit", 1, "a"),
        )
        await tx.execute(
            "INSERT INTO player (room_id, user_id, nickname) VALUES (%s, %s, %s)",
            ("t-commit", 2, "b"),
        )
    rows = await DBExecute(
        "SELECT COUNT(*) FROM player WHERE room_id = %s", ("t-commit",), pool="game"
    ).fetchone()
    await DBExecute("DELETE FROM player WHERE room_id = %s", ("t-commit",), pool="game").execute()
    assert rows == (2,)


async def test_a_failing_transaction_leaves_nothing_behind():
    with pytest.raises(Exception, match="Duplicate"):
        async with transaction("game") as tx:
            await tx.execute(
                "INSERT INTO player (room_id, user_id, nickname) VALUES (%s, %s, %s)",
                ("t-rollback", 1, "a"),
            )
            await tx.execute(
                "INSERT INTO player (room_id, user_id, nickname) VALUES (%s, %s, %s)",
                ("t-rollback", 1, "again"),
            )
    rows = await DBExecute(
        "SELECT COUNT(*) FROM player WHERE room_id = %s", ("t-rollback",), pool="game"
    ).fetchone()
    assert rows == (0,)


async def test_queries_reuse_pooled_connections():
    ids = {(await DBExecute("SELECT CONNECTION_ID()").fetchone())[0] for _ in range(20)}
    assert len(ids) == 1
    assert pools_stats()["study"]["size"] == 1


async def test_the_guides_acquire_form_opens_a_new_connection_every_time():
    """`async with await pool.acquire()` closes the connection on exit: no pooling at all."""
    pool = pool_get("study")
    ids = set()
    for _ in range(5):
        async with await pool.acquire() as conn:
            async with conn.cursor() as cur:
                await cur.execute("SELECT CONNECTION_ID()")
                ids.add((await cur.fetchone())[0])
        pool.release(conn)
    assert len(ids) == 5


async def test_the_app_user_cannot_change_the_schema():
    import pymysql

    with pytest.raises(pymysql.err.OperationalError, match="denied"):
        await DBExecute("CREATE TABLE hack (id INT)").execute()


async def test_a_closed_pool_says_how_to_open_it():
    await pools_close()
    with pytest.raises(PoolsNotOpen, match="lifespan"):
        pool_get("study")
    await pools_open()
