"""Configuration from environment variables (and the repository's `.env`), in one typed place.

Django's settings, the services manager and the live-server manager all read it, so a port or a
password is defined once. Real environment variables win over `.env`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from dotenv import dotenv_values

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = REPO_ROOT / ".env"


def _read() -> dict[str, str]:
    """`.env`, then the environment over it. A process that may not read `.env` (an app node
    running as its own user, deploy/) has its settings in its environment only."""
    values = {}
    if os.access(ENV_FILE, os.R_OK):
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
    # Redis Sentinel: the sentinels' addresses (empty: QUIZ_REDIS_URL is the server) and the
    # name they know the master by. The database, user and password still come from the URL.
    redis_sentinels: tuple[tuple[str, int], ...]
    redis_master: str
    server_host: str
    server_port: int
    # The URL clients use when it is not the server's own address (behind a TLS proxy, say):
    # "https://127.0.0.1:8443". Empty: http://<server_host>:<server_port>.
    public_url: str
    secret_key: str
    debug: bool
    allowed_hosts: tuple[str, ...]
    ticket_max_age: int
    local_mysql_port: int
    local_redis_port: int
    channel_layer: str

    @property
    def client_host(self) -> str:
        return host_for_clients(self.server_host)

    @property
    def server_url(self) -> str:
        return self.public_url or f"http://{self.client_host}:{self.server_port}"

    @property
    def ws_url(self) -> str:
        return "ws" + self.server_url.removeprefix("http")


def host_for_clients(bind_host: str) -> str:
    """Where this machine reaches a server bound to `bind_host`: a wildcard is no host to call."""
    return {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(bind_host, bind_host)


def host_ports(value: str, default_port: int) -> tuple[tuple[str, int], ...]:
    """The (host, port) pairs of "host:port,host:port,...": a port left out is `default_port`, an
    IPv6 host goes in brackets ("[::1]:26379"), an empty string is no address at all."""
    out = []
    for item in (i.strip() for i in value.split(",")):
        if not item:
            continue
        host, port = item, default_port
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else default_port
        elif item.count(":") == 1:
            host, _, text = item.partition(":")
            port = int(text)
        out.append((host, port))
    return tuple(out)


# How Redis Sentinels are asked for the master: one that does not answer within a second is
# skipped (the next one is asked), so a dead sentinel never holds up finding the master.
SENTINEL_KWARGS: dict[str, Any] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}


def redis_auth(url: str) -> dict[str, Any]:
    """The database number, user and password of a redis:// URL (those it gives): what a client
    of the master found through the sentinels takes from QUIZ_REDIS_URL."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    db = parts.path.lstrip("/") or query.get("db", [""])[0]
    out: dict[str, Any] = {"db": int(db or 0)}
    if parts.username:
        out["username"] = unquote(parts.username)
    if parts.password:
        out["password"] = unquote(parts.password)
    return out


def layer_host(cfg: Config, options: dict[str, Any]) -> dict[str, Any]:
    """The channel layer's host dict, with `options` for its connections: `options` itself (the
    QUIZ_REDIS_URL host dict) without sentinels; else channels_redis' Sentinel form (its
    create_pool makes a SentinelConnectionPool of the master named QUIZ_REDIS_MASTER)."""
    if not cfg.redis_sentinels:
        return options
    return {
        "master_name": cfg.redis_master,
        "sentinels": list(cfg.redis_sentinels),
        "sentinel_kwargs": dict(SENTINEL_KWARGS),
        **{k: v for k, v in options.items() if k != "address"},
        **redis_auth(cfg.redis_url),
    }


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
        redis_sentinels=host_ports(env.get("QUIZ_REDIS_SENTINELS", ""), 26379),
        redis_master=env.get("QUIZ_REDIS_MASTER", "quiz").strip() or "quiz",
        server_host=env.get("QUIZ_HOST", "127.0.0.1"),
        server_port=int(env.get("QUIZ_PORT", "8000")),
        public_url=env.get("QUIZ_PUBLIC_URL", "").strip().rstrip("/"),
        secret_key=env.get("DJANGO_SECRET_KEY", ""),
        debug=_flag(env.get("DJANGO_DEBUG", "0")),
        allowed_hosts=tuple(h.strip() for h in hosts.split(",") if h.strip()),
        ticket_max_age=int(env.get("QUIZ_TICKET_MAX_AGE", str(12 * 3600))),
        local_mysql_port=int(env.get("QUIZ_LOCAL_MYSQL_PORT", "3307")),
        local_redis_port=int(env.get("QUIZ_LOCAL_REDIS_PORT", "6380")),
        channel_layer=env.get("QUIZ_CHANNEL_LAYER", "inbox").strip().lower(),
    )
