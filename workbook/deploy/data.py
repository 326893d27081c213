"""The stack's data servers, the demo's own: MariaDB, a Redis master and its replica with a
password, and three sentinels; where the master is, and killing it as a crash would."""

from __future__ import annotations

import secrets
import time

from workbook.deploy.plan import Plan
from workbook.errors import SetupError
from workbook.setup.localservers import LocalMariaDB, LocalRedis, LocalSentinel


def mysql_query(plan: Plan, sql: str, params: tuple = ()) -> list[tuple]:
    """A query on the stack's MariaDB as its admin (over the socket, on this host only)."""
    import pymysql

    socket_path = str(_mysql(plan).root / "mysqld.sock")
    with pymysql.connect(unix_socket=socket_path, user="root", password="",
                         autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


def redis_password(plan: Plan) -> str:
    """The data servers' requirepass, made once for the stack (a file of mode 0600)."""
    path = plan.root / "redis.password"
    if not path.exists():
        plan.root.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def _mysql(plan: Plan) -> LocalMariaDB:
    return LocalMariaDB(plan.root / "mysql", plan.mysql_port, host=plan.gateway)


def _redises(plan: Plan) -> list[LocalRedis]:
    """The two data servers: the first master and its replica (which may be master by now)."""
    first = (plan.gateway, plan.redis_port)
    return [LocalRedis(plan.root / f"redis-{port}", port, host=plan.gateway,
                       replicaof=None if port == plan.redis_port else first,
                       password=redis_password(plan))
            for port in (plan.redis_port, plan.redis_port + 1)]


def _sentinels(plan: Plan) -> list[LocalSentinel]:
    return [LocalSentinel(plan.root / f"sentinel-{port}", port, (plan.gateway, plan.redis_port),
                          name=plan.redis_master, host=plan.gateway,
                          password=redis_password(plan))
            for port in range(plan.sentinel_port, plan.sentinel_port + 3)]


def redis_master(plan: Plan) -> tuple[str, int] | None:
    """Where the sentinels say the master is (the first that answers), or None."""
    import redis

    for sentinel in _sentinels(plan):
        try:
            client = redis.Redis(sentinel.host, sentinel.port, socket_timeout=1)
            found = client.sentinel_get_master_addr_by_name(plan.redis_master)
        except redis.RedisError:
            continue
        if found:
            host = found[0].decode() if isinstance(found[0], bytes) else str(found[0])
            return host, int(found[1])
    return None


def redis_master_kill(plan: Plan, timeout: float = 30.0) -> tuple[float, tuple[str, int]]:
    """SIGKILL the current master (as a crash would); the seconds until the sentinels name
    another one, and that one. The killed server starts again as a replica of the new master
    afterwards (redis_restore)."""
    before = redis_master(plan)
    victim = next(r for r in _redises(plan) if (r.host, r.port) == before)
    began = time.monotonic()
    victim.kill()
    while time.monotonic() - began < timeout:
        now = redis_master(plan)
        if now is not None and now != before:
            return time.monotonic() - began, now
        time.sleep(0.05)
    raise SetupError(f"the sentinels named no new master within {timeout:.0f} s",
                     f"read {plan.root}/sentinel-*/sentinel.log")


def redis_restore(plan: Plan) -> None:
    """Start a data server that is down again, as a replica of the current master."""
    master = redis_master(plan)
    for server in _redises(plan):
        if not server.running():
            server.replicaof = master
            server.start()


