"""Reliability tests: bad input, handshakes, abuse, faults, exactly-once, idle connections.

Fault tests own their servers: a private MariaDB, Redis and uvicorn processes on free ports,
started through the services manager's classes (`stack`). They never stop or restart the
machine's shared services (3306/6379), which CI and the live server use. The other tests use the
shared live server (`live_server`, QUIZ_PORT).

Every test's server logs are scanned afterwards (Traceback, "Exception in ASGI application",
ERROR lines); each test reports its figures with `figures.report(...)`, which prints one line and
ends up in .run/reliability-results.json (every run, git ignores it) and, with
QUIZ_RECORD_FIGURES=1, in tests/reliability/results.json, the figures the README quotes (so a
partial or local run never overwrites them). QUIZ_FUZZ_SEED picks the random seed (printed).
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from course_project.config import config_get
from workbook.paths import REPO_ROOT
from workbook.setup.liveserver import LiveServer
from workbook.setup.localservers import LocalMariaDB, LocalRedis
from workbook.setup.services import mysql_provision

HERE = Path(__file__).parent
RESULTS = HERE / "results.json"  # recorded on purpose: QUIZ_RECORD_FIGURES=1
LATEST = REPO_ROOT / ".run" / "reliability-results.json"
SEED = int(os.environ.get("QUIZ_FUZZ_SEED", "20261124"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the private stack -------------------------------------------------------------------------


@dataclass
class Stack:
    mysql: LocalMariaDB
    redis: LocalRedis
    servers: dict[str, LiveServer] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {"QUIZ_MYSQL_HOST": self.mysql.host, "QUIZ_MYSQL_PORT": str(self.mysql.port),
                "QUIZ_REDIS_URL": f"redis://{self.redis.host}:{self.redis.port}/0"}

    def server(self, name: str, *, layer: str | None = None) -> LiveServer:
        """A running uvicorn process on the stack (started, or restarted if it was killed)."""
        return self.servers_up([name], layer=layer)[0]

    def servers_up(self, names: list[str], *, layer: str | None = None,
                   env: dict[str, str] | None = None) -> list[LiveServer]:
        """Several servers (channel layer `layer`, else the project's default; `env` over the
        stack's, when a server is first made), started in parallel: each takes a few seconds
        to boot."""
        layer = layer or config_get().channel_layer
        todo, out = [], []
        for name in names:
            key = f"{name}-{layer}"
            server = self.servers.get(key)
            if server is None:
                server = self.servers[key] = LiveServer(
                    "127.0.0.1", free_port(), name=f"rel-{key}",
                    extra_env={**self.env, "QUIZ_CHANNEL_LAYER": layer, **(env or {})})
            if not server.healthy():
                todo.append(server)
            out.append(server)
        errors: list[BaseException] = []

        def start(server: LiveServer) -> None:
            try:
                server.stop(quiet=True)
                server.start(timeout=40)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(s,)) for s in todo]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return out

    def mysql_admin(self):
        import pymysql

        return pymysql.connect(host=self.mysql.host, port=self.mysql.port, user="root",
                               password="", autocommit=True)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.mysql_admin() as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """A private MariaDB + Redis, provisioned like the real ones; servers added by the tests."""
    root = tmp_path_factory.mktemp("stack")
    mysql = LocalMariaDB(root / "mysql", free_port())
    redis_ = LocalRedis(root / "redis", free_port())
    mysql.start()
    redis_.start()
    made = Stack(mysql, redis_)
    try:
        mysql_provision(mysql.host, mysql.port, admin_user="root", admin_password="")
        yield made
    finally:
        # Each stop on its own: one that fails must not leave the others running.
        stops = [functools.partial(s.stop, quiet=True) for s in made.servers.values()]
        for stop in [*stops, redis_.stop, mysql.stop]:
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - reported, then the next one
                print(f"[reliability] stack teardown: {exc!r}")


# --- server logs ---------------------------------------------------------------------------------

_RECORD_START = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|INFO:|WARNING:|ERROR:|DEBUG:|"
                           r"CRITICAL:|TRACE:)")
_BAD = re.compile(r"Traceback|Exception in ASGI application|\bERROR\b|\bCRITICAL\b|"
                  r"Task was destroyed|never retrieved")
# Known, expected records, each with its reason. Keep this list short.
KNOWN_LINES = [
    # uvicorn itself logs a client's invalid UTF-8 text frame with logger.exception, then closes
    # the connection with 1007 as RFC 6455 says: the server is fine, the client was wrong.
    (re.compile(r"Invalid UTF-8 sequence received from client"), "uvicorn: client sent bad UTF-8"),
]
# The stock RedisChannelLayer fires a clean-up task after each receive and never awaits it: in
# a Redis outage it fails, and asyncio logs "Task exception was never retrieved". A defect of
# the stock layer (channels_redis 4.3), outside this project; only the Redis fault tests allow
# it (with server_logs.allow), and only for that task.
STOCK_LAYER_CLEANER = re.compile(r"(?s)Task exception was never retrieved.*"
                                 r"RedisChannelLayer\._clean_receive_backup")


def log_records(text: str) -> list[str]:
    records: list[str] = []
    for line in text.splitlines():
        if _RECORD_START.match(line) or not records:
            records.append(line)
        else:
            records[-1] += "\n" + line
    return records


def log_problems(text: str, allow: list[re.Pattern] | None = None) -> list[str]:
    """Records of a log excerpt that show a crash or an error, minus the known ones."""
    allowed = [p for p, _ in KNOWN_LINES] + list(allow or [])
    return [r for r in log_records(text) if _BAD.search(r) and not any(
        p.search(r) for p in allowed)]


class LogWatch:
    """Remembers where each server log ended, then reads what a test added."""

    def __init__(self, files: list[Path]) -> None:
        self.start = {f: (f.stat().st_size if f.exists() else 0) for f in files}
        self.allow: list[re.Pattern] = []

    def added(self, files: list[Path]) -> dict[Path, str]:
        out = {}
        for f in files:
            if f.exists():
                with open(f, "rb") as fh:
                    fh.seek(self.start.get(f, 0))
                    out[f] = fh.read().decode("utf-8", "replace")
        return out


@pytest.fixture(autouse=True)
def server_logs(request):
    """Fail the test if a server it used logged a traceback or an unexpected error."""
    stack_ = request.getfixturevalue("stack") if "stack" in request.fixturenames else None
    plan = request.getfixturevalue("deployed") if "deployed" in request.fixturenames else None

    def files() -> list[Path]:
        found = [LiveServer.default().log_file]
        if stack_ is not None:
            found += [s.log_file for s in stack_.servers.values()]
        if plan is not None:  # the deployment's app nodes (test_deploy.py)
            from workbook.deploy import Node

            found += [Node(plan, i).log_file for i in range(len(plan.nodes))]
        return found

    watch = LogWatch(files())
    yield watch
    problems = {f.name: log_problems(text, watch.allow) for f, text in watch.added(files()).items()}
    problems = {name: found for name, found in problems.items() if found}
    if problems:
        shown = "\n".join(f"--- {name}:\n" + "\n".join(found[:3]) for name, found in
                          problems.items())
        pytest.fail(f"server log shows crashes or errors:\n{shown[:6000]}", pytrace=False)


# --- the minute-long checks, in the background ------------------------------------------------

LONG_WAITS_TEST = "tests/reliability/test_idle.py"


def pytest_collection_modifyitems(config, items):
    """test_idle.py only collects what the background checks found: run it after the other
    reliability tests, which the checks' minute overlaps."""
    waiting = [i for i in items if i.nodeid.startswith(LONG_WAITS_TEST)]
    if not waiting:
        return
    config.stash[_LONG_WAITS_WANTED] = True
    for item in waiting:
        items.remove(item)
    last = max((n for n, i in enumerate(items) if i.nodeid.startswith("tests/reliability/")),
               default=len(items) - 1)
    items[last + 1:last + 1] = waiting


_LONG_WAITS_WANTED = pytest.StashKey[bool]()


@pytest.fixture(scope="session", autouse=True)
def long_waits(request):
    """Started with the first reliability test (if test_idle.py is part of the run)."""
    if not request.config.stash.get(_LONG_WAITS_WANTED, False):
        return None
    from .longwaits import LongWaits

    request.getfixturevalue("live_server")
    return LongWaits(LiveServer.default().url).start()


# --- figures ---------------------------------------------------------------------------------


class Figures:
    """What each test tried and survived; printed as one line, written as JSON (the figures
    of this run only)."""

    KEYS = ("frames", "flood_frames", "handshakes", "requests", "refusals", "faults",
            "rows_lost")

    def __init__(self) -> None:
        self.tests: dict[str, dict] = {}

    def report(self, test: str, **figures) -> None:
        self.tests[test] = figures
        shown = " ".join(f"{k}={v}" for k, v in figures.items())
        print(f"\n[reliability] {test}: {shown} (seed {SEED})", flush=True)

    def totals(self) -> dict:
        return {k: sum(int(t.get(k) or 0) for t in self.tests.values()) for k in self.KEYS}


@pytest.fixture(scope="session")
def figures():
    made = Figures()
    yield made
    if made.tests:
        text = json.dumps({
            "generated": time.strftime("%Y-%m-%d %H:%M:%S"), "seed": SEED,
            "totals": made.totals(), "tests": made.tests,
        }, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
        LATEST.parent.mkdir(exist_ok=True)
        LATEST.write_text(text)
        if os.environ.get("QUIZ_RECORD_FIGURES") == "1":
            RESULTS.write_text(text)
