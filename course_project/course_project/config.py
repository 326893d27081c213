"""Configuration from environment variables (and the repository's `.env`), in one typed place.

Django's settings, the services manager and the live-server manager all read it, so a port or a
password is defined once. Real environment variables win over `.env`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dotenv import dotenv_values

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = REPO_ROOT / ".env"
RUN_DIR = REPO_ROOT / ".run"  # pid and log files of the live server
SERVICES_DIR = REPO_ROOT / ".services"  # data of project-local MariaDB/Redis


def _read() -> dict[str, str]:
    values = {k: v for k, v in dotenv_values(ENV_FILE).items() if v is not None}
    values.update(os.environ)
    return values


@dataclass(frozen=True)
class Config:
    mysql_host: str
    mysql_port: int
    mysql_admin_user: str
    mysql_admin_password: str
    mysql_user: str
    mysql_password: str
    study_db: str
    game_db: str
    pool_maxsize: int
    redis_url: str
    server_host: str
    server_port: int
    secret_key: str
    debug: bool
    allowed_hosts: tuple[str, ...]
    ticket_max_age: int
    local_mysql_port: int
    local_redis_port: int
    channel_layer: str

    @property
    def learner_dbs(self) -> tuple[str, str]:
        """The study and game databases of the learner's copy (workbook.learner), made beside
        these by the same setup: a learner's bug never touches the reference's data."""
        return f"{self.study_db}_learner", f"{self.game_db}_learner"

    @property
    def client_host(self) -> str:
        return host_for_clients(self.server_host)

    @property
    def server_url(self) -> str:
        return f"http://{self.client_host}:{self.server_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.client_host}:{self.server_port}"


def host_for_clients(bind_host: str) -> str:
    """Where this machine reaches a server bound to `bind_host`: a wildcard is no host to call."""
    return {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(bind_host, bind_host)


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@cache
def config_get() -> Config:
    env = _read()
    hosts = env.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
    return Config(
        mysql_host=env.get("QUIZ_MYSQL_HOST", "127.0.0.1"),
        mysql_port=int(env.get("QUIZ_MYSQL_PORT", "3306")),
        mysql_admin_user=env.get("QUIZ_MYSQL_ADMIN_USER", "root"),
        mysql_admin_password=env.get("QUIZ_MYSQL_ADMIN_PASSWORD", ""),
        mysql_user=env.get("QUIZ_MYSQL_USER", "quiz_app"),
        mysql_password=env.get("QUIZ_MYSQL_PASSWORD", ""),
        study_db=env.get("QUIZ_STUDY_DB", "quiz_study"),
        game_db=env.get("QUIZ_GAME_DB", "quiz_game"),
        pool_maxsize=int(env.get("QUIZ_POOL_MAXSIZE", "20")),
        redis_url=env.get("QUIZ_REDIS_URL", "redis://127.0.0.1:6379/0"),
        server_host=env.get("QUIZ_HOST", "127.0.0.1"),
        server_port=int(env.get("QUIZ_PORT", "8000")),
        secret_key=env.get("DJANGO_SECRET_KEY", ""),
        debug=_flag(env.get("DJANGO_DEBUG", "0")),
        allowed_hosts=tuple(h.strip() for h in hosts.split(",") if h.strip()),
        ticket_max_age=int(env.get("QUIZ_TICKET_MAX_AGE", str(12 * 3600))),
        local_mysql_port=int(env.get("QUIZ_LOCAL_MYSQL_PORT", "3307")),
        local_redis_port=int(env.get("QUIZ_LOCAL_REDIS_PORT", "6380")),
        channel_layer=env.get("QUIZ_CHANNEL_LAYER", "inbox").strip().lower(),
    )


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
