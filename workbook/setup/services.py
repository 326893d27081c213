"""The services manager: find or start MySQL and Redis, then create databases, user, schema, seed.

    python -m workbook.setup.services up        # resolve both servers, provision, seed (idempotent)
    python -m workbook.setup.services status
    python -m workbook.setup.services reset     # drop and recreate both databases, then seed again
    python -m workbook.setup.services stop      # stop project-local instances (never the machine's)

Resolution order: a server already reachable at the configured address; else a
project-local instance from binaries on PATH under .services/ on its own port; else, on
Debian/Ubuntu as root, `apt-get install mariadb-server redis-server` and start local instances;
else stop with the exact install command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
from pathlib import Path

import pymysql
import redis
import redis.sentinel

from course_project.config import ENV_FILE, SENTINEL_KWARGS, Config, config_get, redis_auth
from workbook.errors import SetupError, step
from workbook.paths import REPO_ROOT, SERVICES_DIR
from workbook.setup.debian import debian_install, debian_root
from workbook.setup.localservers import LocalMariaDB, LocalRedis, port_open

DATA_DIR = REPO_ROOT / "data"
APP_HOSTS = ("localhost", "127.0.0.1", "::1")
LEARNER_REDIS_DB = 1  # the learner's copy's; the reference uses the URL's own (0 by default)


def learner_dbs(cfg: Config) -> tuple[str, str]:
    """The study and game databases of the learner's copy (workbook.chapters), made beside the
    reference's by the same setup: a learner's bug never touches the reference's data."""
    return f"{cfg.study_db}_learner", f"{cfg.game_db}_learner"


def env_file_update(values: dict[str, str]) -> None:
    """Set keys in `.env`, keeping every other line as it is (setup owns only these keys)."""
    lines = ENV_FILE.read_text().splitlines() if ENV_FILE.exists() else []
    todo = dict(values)
    out = []
    for line in lines:
        key = line.split("=", 1)[0].strip()
        if key in todo:
            out.append(f"{key}={todo.pop(key)}")
        else:
            out.append(line)
    out.extend(f"{k}={v}" for k, v in todo.items())
    ENV_FILE.write_text("\n".join(out) + "\n")
    ENV_FILE.chmod(0o600)
    # What setup decided also holds for this process and the ones it starts (the live server),
    # even where an environment variable had said otherwise.
    os.environ.update(values)
    config_get.cache_clear()


def install_hint() -> str:
    if sys.platform == "darwin":
        return "brew install mariadb redis"
    if Path("/etc/debian_version").exists():
        prefix = "" if os.geteuid() == 0 else "sudo "
        return f"{prefix}apt-get install -y mariadb-server redis-server"
    return "conda env create -f environment.yml && conda activate quiz-workbook"


def _apt_install() -> None:
    if not debian_root():
        raise SetupError("MariaDB/MySQL or Redis binaries are missing", install_hint())
    step("services", "installing mariadb-server redis-server with apt-get (one time)")
    if not debian_install("mariadb-server", "redis-server", recommends=True):
        raise SetupError("'apt-get install mariadb-server redis-server' failed", install_hint())


# --- MySQL -----------------------------------------------------------------------------------


def admin_connect(
    host: str, port: int, *, user: str | None = None, password: str | None = None,
    unix_socket: str | None = None,
) -> pymysql.connections.Connection:
    """The admin's connection: over TCP, or over `unix_socket` when given (a server that listens
    on an address from which root may not log in)."""
    cfg = config_get()
    return pymysql.connect(
        host=host,
        port=port,
        unix_socket=unix_socket,
        user=cfg.mysql_admin_user if user is None else user,
        password=cfg.mysql_admin_password if password is None else password,
        connect_timeout=3,
        charset="utf8mb4",
        autocommit=True,
    )


def _mysql_try(host: str, port: int) -> str | None:
    """Server version if the admin can log in; None if nothing listens; SetupError on bad auth."""
    if not port_open(host, port):
        return None
    try:
        with admin_connect(host, port) as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            return cur.fetchone()[0]
    except pymysql.err.OperationalError as exc:
        code = exc.args[0]
        if code in (1045, 1698):
            raise SetupError(
                f"MySQL at {host}:{port} refused the admin login ({exc.args[1]})",
                "set QUIZ_MYSQL_ADMIN_USER/QUIZ_MYSQL_ADMIN_PASSWORD in .env to an account that "
                "may create databases and users",
            ) from exc
        raise SetupError(
            f"MySQL at {host}:{port} answered with error {code}: {exc.args[1]}",
            "check the server's log, or set QUIZ_MYSQL_PORT to another server",
        ) from exc


def mysql_resolve() -> tuple[str, int, str]:
    cfg = config_get()
    version = _mysql_try(cfg.mysql_host, cfg.mysql_port)
    if version:
        step("services", f"mysql: reachable at {cfg.mysql_host}:{cfg.mysql_port} ({version})")
        return cfg.mysql_host, cfg.mysql_port, version
    local = LocalMariaDB(SERVICES_DIR / "mysql", cfg.local_mysql_port)
    if not local.running():
        if LocalMariaDB.binaries() is None:
            _apt_install()
        step("services", f"mysql: starting a project-local server on port {local.port}")
        local.start()
    version = _mysql_try(local.host, local.port)
    if not version:
        raise SetupError(
            f"local MySQL on port {local.port} does not answer", f"see {local.log_file}"
        )
    env_file_update(
        {
            "QUIZ_MYSQL_HOST": local.host,
            "QUIZ_MYSQL_PORT": str(local.port),
            "QUIZ_MYSQL_ADMIN_USER": "root",
            "QUIZ_MYSQL_ADMIN_PASSWORD": "",
        }
    )
    step("services", f"mysql: project-local at {local.host}:{local.port} ({version})")
    return local.host, local.port, version


def _statements(sql: str) -> list[str]:
    # Our own schema files: "-- " starts a comment anywhere on a line; ";" ends a statement.
    lines = [ln.split("-- ", 1)[0] for ln in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _shared_credentials(host: str, port: int) -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "quiz-workbook" / f"mysql-{host}-{port}.password"


def app_password_choose(host: str, port: int) -> str:
    """The app user's password: QUIZ_MYSQL_PASSWORD from the environment if set; else the one every
    checkout on this machine shares for this server (so a second clone, or CI's, never changes
    the password under a running server); else a new random one. Never stored in the repo."""
    shared = _shared_credentials(host, port)
    password = os.environ.get("QUIZ_MYSQL_PASSWORD", "")
    if not password and shared.exists():
        password = shared.read_text().strip()
    password = password or config_get().mysql_password or secrets.token_urlsafe(18)
    shared.parent.mkdir(parents=True, exist_ok=True)
    shared.write_text(password + "\n")
    shared.chmod(0o600)
    return password


def mysql_provision(
    host: str, port: int, *, admin_user: str | None = None, admin_password: str | None = None,
    app_hosts: tuple[str, ...] = APP_HOSTS, unix_socket: str | None = None,
) -> None:
    """Databases, the least-privilege app user (who may log in from `app_hosts`: MySQL account
    host names or patterns), schema and seed data, as the admin (over `unix_socket` if given).
    Safe to run again."""
    try:
        _provision(host, port, admin_user, admin_password, app_hosts, unix_socket)
    except pymysql.MySQLError as exc:
        raise SetupError(
            f"provisioning MySQL at {host}:{port} failed: {exc.args}",
            "make reset (drops and recreates the two course databases)",
        ) from exc


def _provision(host: str, port: int, admin_user: str | None, admin_password: str | None,
               app_hosts: tuple[str, ...], unix_socket: str | None) -> None:
    cfg = config_get()
    password = app_password_choose(host, port)
    if password != cfg.mysql_password:
        env_file_update({"QUIZ_MYSQL_PASSWORD": password})
    with (
        admin_connect(host, port, user=admin_user, password=admin_password,
                      unix_socket=unix_socket) as conn,
        conn.cursor() as cur,
    ):
        study_learner, game_learner = learner_dbs(cfg)
        every_db = (cfg.study_db, cfg.game_db, study_learner, game_learner)
        for db in every_db:
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{db}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        for app_host in app_hosts:
            cur.execute(
                "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s",
                (cfg.mysql_user, app_host, password),
            )
            cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (cfg.mysql_user, app_host, password))
            for db in every_db:
                # Data only: no CREATE/DROP/ALTER/GRANT for the app.
                cur.execute(
                    f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.* TO %s@%s",
                    (cfg.mysql_user, app_host),
                )
        for db, name in ((cfg.study_db, "schema_study.sql"), (cfg.game_db, "schema_game.sql"),
                         (study_learner, "schema_study.sql"), (game_learner, "schema_game.sql")):
            cur.execute(f"USE `{db}`")
            for stmt in _statements((DATA_DIR / name).read_text(encoding="utf-8")):
                cur.execute(stmt)
        step(
            "services",
            f"mysql: databases {cfg.study_db}, {cfg.game_db} and user {cfg.mysql_user} ready "
            f"(and the learner's copy's {study_learner}, {game_learner})",
        )
        seed_load(cur, study_learner)
        counts = seed_load(cur, cfg.study_db)
        step(
            "services", f"mysql: seed data: {counts['user']} users, {counts['question']} questions"
        )


def seed_load(cur, study_db: str) -> dict[str, int]:
    cur.execute(f"USE `{study_db}`")
    users = json.loads((DATA_DIR / "users.json").read_text(encoding="utf-8"))
    cur.executemany(
        "INSERT INTO user (id, nickname) VALUES (%s, %s) "
        "ON DUPLICATE KEY UPDATE nickname = VALUES(nickname)",
        [(u["id"], u["nickname"]) for u in users],
    )
    questions = json.loads((DATA_DIR / "questions.json").read_text(encoding="utf-8"))
    cur.executemany(
        "INSERT INTO question (id, category, lang, text, choices, answer) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE category = VALUES(category), "
        "lang = VALUES(lang), text = VALUES(text), choices = VALUES(choices), "
        "answer = VALUES(answer)",
        [
            (
                q["id"],
                q["category"],
                q["lang"],
                q["text"],
                json.dumps(q["choices"], ensure_ascii=False),
                q["answer"],
            )
            for q in questions
        ],
    )
    counts = {}
    for table in ("user", "question"):
        cur.execute(f"SELECT COUNT(*) FROM `{table}`")  # noqa: S608 (a constant table name)
        counts[table] = cur.fetchone()[0]
    return counts


def mysql_reset() -> None:
    cfg = config_get()
    host, port, _ = mysql_resolve()
    with admin_connect(host, port) as conn, conn.cursor() as cur:
        for db in (cfg.study_db, cfg.game_db, *learner_dbs(cfg)):
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
    step("services", f"mysql: dropped {cfg.study_db}, {cfg.game_db} and the learner's "
         f"{' and '.join(learner_dbs(cfg))}")
    mysql_provision(host, port)


# --- Redis -----------------------------------------------------------------------------------


def _redis_ping(url: str) -> str | None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            return client.info("server")["redis_version"]
        finally:
            client.close()
    except redis.exceptions.AuthenticationError as exc:
        raise SetupError(
            f"Redis at {url} refused the login ({exc})",
            "put the password in QUIZ_REDIS_URL: redis://:PASSWORD@host:port/0",
        ) from exc
    except redis.exceptions.RedisError:
        return None


def redis_sentinel_resolve(cfg: Config) -> str:
    """With QUIZ_REDIS_SENTINELS set, the master they name must answer (the project starts no
    Redis of its own then): its URL, with QUIZ_REDIS_URL's database."""
    sentinel = redis.sentinel.Sentinel(list(cfg.redis_sentinels),
                                       sentinel_kwargs=dict(SENTINEL_KWARGS))
    auth = redis_auth(cfg.redis_url)
    where = ",".join(f"{h}:{p}" for h, p in cfg.redis_sentinels)
    try:
        host, port = sentinel.discover_master(cfg.redis_master)
        client = sentinel.master_for(cfg.redis_master, socket_timeout=2, socket_connect_timeout=2,
                                     **auth)
        version = client.info("server")["redis_version"]
    except redis.exceptions.RedisError as exc:
        raise SetupError(
            f"the Redis Sentinels at {where} name no master {cfg.redis_master!r} that answers "
            f"({exc})", "start the sentinels and their master, or unset QUIZ_REDIS_SENTINELS",
        ) from exc
    step("services", f"redis: master {cfg.redis_master!r} at {host}:{port}, named by the "
                     f"sentinels at {where} (Redis {version})")
    return f"redis://{host}:{port}/{auth['db']}"


def redis_resolve() -> str:
    cfg = config_get()
    if cfg.redis_sentinels:
        return redis_sentinel_resolve(cfg)
    version = _redis_ping(cfg.redis_url)
    if version:
        step("services", f"redis: reachable at {cfg.redis_url} (Redis {version})")
        return cfg.redis_url
    local = LocalRedis(SERVICES_DIR / "redis", cfg.local_redis_port)
    if not local.running():
        if LocalRedis.binary() is None:
            _apt_install()
        step("services", f"redis: starting a project-local server on port {local.port}")
        local.start()
    url = f"redis://{local.host}:{local.port}/0"
    version = _redis_ping(url)
    if not version:
        raise SetupError(
            f"local Redis on port {local.port} does not answer", f"see {local.log_file}"
        )
    env_file_update({"QUIZ_REDIS_URL": url})
    step("services", f"redis: project-local at {url} (Redis {version})")
    return url


# --- commands --------------------------------------------------------------------------------


def services_up() -> None:
    redis_resolve()
    host, port, _ = mysql_resolve()
    mysql_provision(host, port)
    if not config_get().secret_key:
        env_file_update({"DJANGO_SECRET_KEY": secrets.token_urlsafe(48)})
        step("services", "wrote a new DJANGO_SECRET_KEY to .env (ignored by git)")


def services_status() -> dict:
    cfg = config_get()
    status = {
        "mysql": f"{cfg.mysql_host}:{cfg.mysql_port}",
        "mysql_version": None,
        "redis": cfg.redis_url,
        "redis_version": _redis_ping(cfg.redis_url),
        "python": platform.python_version(),
    }
    try:
        status["mysql_version"] = _mysql_try(cfg.mysql_host, cfg.mysql_port)
    except SetupError as exc:
        status["mysql_version"] = f"error: {exc.problem}"
    return status


def services_stop() -> None:
    cfg = config_get()
    for local in (
        LocalMariaDB(SERVICES_DIR / "mysql", cfg.local_mysql_port),
        LocalRedis(SERVICES_DIR / "redis", cfg.local_redis_port),
    ):
        if local.running():
            local.stop()
            step("services", f"stopped the project-local server on port {local.port}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workbook.setup.services",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "status", "reset", "stop"])
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            services_up()
        elif args.command == "reset":
            redis_resolve()
            mysql_reset()
        elif args.command == "stop":
            services_stop()
        else:
            for key, value in services_status().items():
                print(f"{key:14} {value}")
    except SetupError as exc:
        print(f"error: {exc.problem}. Fix: {exc.fix}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
