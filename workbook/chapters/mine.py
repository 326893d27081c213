"""Clients for the chapters' checks of the learner's own server (workbook.chapters.learner).

    await talk(path, *frames)       a websocket to it: what came back, or how it was refused
    trouble(*talks)                 where to look when a socket was not answered, refused or dropped
    learner_http(method, path)      an HTTP request to it (client.http's HttpReply)
    learner_ticket(user_id)         a ticket issued by the learner's own code (learner_tickets:
                                    several, for any copy)
    learner_players(*user_ids)      players for the bots: id, nickname, ticket (LookupError if
                                    the learner's /api/user does not know one: a set-up fault)
    learner_layer(), learner_redis()  a channel layer and a Redis client on its Redis database
    await seen_from_outside(...)    what a client of it gets when this process sends to a group
    async with hold(path):          a client connected meanwhile (or how it was refused)
    await learner_mysql_connections()  its MySQL connections now, by database
    learner_async(body)             code run inside the copy (its manage.py), pools open
    learner_pytest(*args)           the copy's own tests, run by pytest in the copy: a TestRun
    learner_ruff()                  ruff on the copy, with the project's rules: one line a finding

A check must say what the learner's code did, whatever it did: so nothing here raises for a
refused handshake, a closed socket or an HTTP error; each comes back as a value to print.
The connections themselves are workbook.chapters.client's, pointed at the learner's server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from workbook.chapters.client import HttpReply, http, ws_open
from workbook.chapters.isolation import learner_dir, learner_env, python_apart
from workbook.chapters.learner import learner_manage, learner_server
from workbook.paths import REPO_ROOT


@dataclass
class Talk:
    """What one websocket to the learner's server saw."""

    status: int = 101  # the handshake's HTTP status: 101 accepted, else refused (0: no answer)
    subprotocol: str | None = None
    failure: str = ""  # with status 0: why there was no handshake to speak of, in a sentence
    cause: str = ""  # with status 0: not_loading | no_handshake | no_server | handshake_failed
    replies: list[Any] = field(default_factory=list)  # JSON frames received, in order
    close_code: int | None = None  # set when the server closed the socket
    ws: Any = field(default=None, repr=False)  # the connection, while hold() holds it

    async def recv(self, wait: float = 2.0) -> Any:
        """The next JSON frame of a client that hold() holds, or a sentence saying why none."""
        try:
            return json.loads(await asyncio.wait_for(self.ws.recv(), wait))
        except TimeoutError:
            return f"nothing within {wait:g} s"
        except ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd else 1006
            return f"closed with code {self.close_code}"

    @property
    def accepted(self) -> bool:
        return self.status == 101

    def __str__(self) -> str:
        if self.failure:
            return self.failure
        if not self.accepted:
            return f"refused with HTTP {self.status}"
        closed = f", then closed with code {self.close_code}" if self.close_code else ""
        return f"accepted, replies {self.replies}{closed}"


async def talk(path: str, *frames: Any, replies: int | None = None, wait: float = 2.0,
               ticket: str | None = None, origin: str | None = None) -> Talk:
    """Open a websocket to `path` (offering `ticket` as subprotocol), send each frame (JSON
    unless a str), and collect up to `replies` JSON frames (default: one per frame sent) or until
    `wait` seconds pass quietly. The Origin header is the learner's server's own, as a page it
    served would send, unless `origin` names another ("" sends none)."""
    want = len(frames) if replies is None else replies
    seen = Talk()
    if _not_serving(seen):
        return seen
    ws = await _open_for(seen, path, ticket, origin)
    if ws is None:
        return seen
    async with ws:
        seen.subprotocol = ws.subprotocol
        try:
            for frame in frames:
                await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
            while len(seen.replies) < want:
                raw = await asyncio.wait_for(ws.recv(), wait)
                seen.replies.append(json.loads(raw))
        except ConnectionClosed as exc:
            seen.close_code = exc.rcvd.code if exc.rcvd else 1006
        except TimeoutError:
            pass  # quiet for `wait` seconds: what came is what there is
    return seen


OPEN_TIMEOUT = 5.0  # seconds a check waits for the learner's server to finish a handshake


async def _open_for(seen: Talk, path: str, ticket: str | None, origin: str | None = None):
    """A websocket to the learner's server, or None with `seen` saying why there is none."""
    try:
        return await ws_open(path, ticket, base=learner_server().url, origin=origin,
                             open_timeout=OPEN_TIMEOUT)
    except InvalidStatus as exc:
        seen.status = exc.response.status_code
    except InvalidHandshake as exc:
        _unanswered(seen, "handshake_failed", f"the handshake failed: {exc}")
    except TimeoutError:
        _unanswered(seen, "no_handshake", NO_HANDSHAKE)
    except OSError as exc:
        _unanswered(seen, "no_server", _no_server(exc.strerror or exc))
    return None


NOT_LOADING = "no answer: your server's code does not load (a file you saved does not import)"
NO_HANDSHAKE = (f"no answer within {OPEN_TIMEOUT:g} s: the handshake never finished. Does your "
                "connect() wait for something that never comes, or return without "
                "self.accept() or self.close()?")
NO_VIEW_ANSWER = (f"no answer within {OPEN_TIMEOUT:g} s: does your view wait for something that "
                  "never comes?")


def _no_server(reason: object) -> str:
    return (f"no server answers at {learner_server().url} ({reason}): run the chapter's first "
            "cell, which starts it")


def _unanswered(seen: Talk, cause: str, failure: str) -> None:
    seen.status, seen.cause, seen.failure = 0, cause, failure


def _not_serving(seen: Talk) -> bool:
    """Mark `seen` as unanswered when the learner's server cannot load its code (a file that
    does not import): its socket would take the connection and never answer."""
    if learner_server().broken():
        _unanswered(seen, "not_loading", NOT_LOADING + ", so nothing takes the connection")
        return True
    return False


_WHERE = {  # a check's hint, by why a socket got no answer
    "not_loading": ("your server does not load your code: the file named at the end of the "
                    "traceback below does not import"),
    "no_handshake": ("connect() in your consumer never finished the handshake: it must end with "
                     "await self.accept() (or self.close(), to refuse)"),
}


def trouble(*talks: Talk) -> str | None:
    """Where to look when a socket of a check went wrong before any reply could be judged: the
    start of the check's ✗ hint, for the first of `talks` that was not answered, was refused,
    or was dropped by a crash. None when each was accepted and none was dropped."""
    for seen in talks:
        if seen.cause:
            return _WHERE.get(seen.cause, seen.failure)
        if not seen.accepted:
            return (f"your server refused the handshake (HTTP {seen.status}): does connect() in "
                    "your consumer end with await self.accept()?")
        if seen.close_code == 1006:
            return ("a handler of your consumer raised, and uvicorn dropped the connection: the "
                    "traceback below says where")
    return None


def learner_tickets(user_ids: Iterable[int], root: Path | None = None) -> list[str]:
    """Tickets for `user_ids`, issued by the copy's own `common.tickets.ticket_issue` with its
    own settings' secret key (until chapter 10, startproject's), in one manage.py run."""
    ids = [int(uid) for uid in user_ids]
    code = ("import json; from common.tickets import ticket_issue; "
            f"print(json.dumps([ticket_issue(user_id=uid) for uid in {ids!r}]))")
    out = learner_manage("shell", "--no-imports", "-c", code, root=root)
    return json.loads(out.strip().splitlines()[-1])


def learner_ticket(user_id: int) -> str:
    """A ticket for `user_id`, issued by the learner's own code (learner_tickets)."""
    return learner_tickets([user_id])[0]


def learner_players(*user_ids: int) -> list[dict]:
    """Players of the learner's copy, as the bots take them: {"user_id", "nickname", "ticket"}
    for users of its study database, the tickets issued by the learner's own code."""
    players = []
    for uid, ticket in zip(user_ids, learner_tickets(user_ids), strict=True):
        user = learner_http("GET", f"/api/user?uid={uid}")
        if user.status != 200:
            raise LookupError(f"GET /api/user?uid={uid} on your server: {user.status} {user.body}")
        players.append({"user_id": uid, "nickname": user.body["nickname"], "ticket": ticket})
    return players


def learner_http(method: str, path: str, body: Any = None) -> HttpReply:
    """`method path` on the learner's server: its status, body (parsed if JSON) and type; status
    0 and a sentence for a body when no answer came (its code does not load, no server runs,
    or a view of theirs took longer than OPEN_TIMEOUT)."""
    server = learner_server()
    if server.broken():
        return HttpReply(0, NOT_LOADING, "")
    try:
        return http(method, path, body, base=server.url, timeout=OPEN_TIMEOUT)
    except TimeoutError:
        return HttpReply(0, NO_VIEW_ANSWER, "")
    except OSError as exc:  # urllib wraps a timeout while connecting in URLError
        reason = getattr(exc, "reason", exc)
        return HttpReply(0, NO_VIEW_ANSWER if isinstance(reason, TimeoutError)
                         else _no_server(reason), "")


def learner_layer():
    """A RedisChannelLayer on the learner's own Redis database, for a notebook to reach the
    learner's consumers from outside (a process of its own, like a second worker)."""
    from channels_redis.core import RedisChannelLayer

    host = {"address": learner_env()["QUIZ_REDIS_URL"], "socket_timeout": None}
    return RedisChannelLayer(hosts=[host])


def learner_redis():
    """An asyncio Redis client on the learner's own database (decoded replies)."""
    import redis.asyncio

    return redis.asyncio.Redis.from_url(learner_env()["QUIZ_REDIS_URL"], decode_responses=True)


@contextlib.asynccontextmanager
async def hold(path: str, ticket: str | None = None) -> AsyncIterator[Talk]:
    """A client that stays connected to `path` of the learner's server for the `async with`
    block (with its Origin): a Talk saying whether it got in (`accepted`) or how it was refused,
    whose `recv()` reads its next frame."""
    seen = Talk()
    async with contextlib.AsyncExitStack() as stack:
        if not _not_serving(seen):
            ws = await _open_for(seen, path, ticket)
            if ws is not None:
                await stack.enter_async_context(ws)
                seen.subprotocol, seen.ws = ws.subprotocol, ws
        yield seen


async def seen_from_outside(path: str, group: str, event: dict[str, Any], wait: float = 2.0,
                            ticket: str | None = None) -> Any:
    """A client on `path` of the learner's server (hold()) while this process sends `event` to
    `group` through learner_layer(): the frame the client got, or a sentence saying why none."""
    async with hold(path, ticket) as client:
        if not client.accepted:
            return f"the client was {client}"
        layer = learner_layer()
        try:
            await layer.group_send(group, event)
        finally:
            await layer.close_pools()
        return await client.recv(wait)


async def learner_mysql_connections() -> dict[str, list[int]]:
    """The MySQL connections the learner's server holds right now: {database: [connection id,
    ...]}. Read from MySQL's PROCESSLIST (the app user sees its own threads) and matched to the
    TCP sockets of the server's processes, so another copy's server or the reference's, which log
    in as the same user, never count."""
    import aiomysql
    import psutil

    from course_project.config import config_get

    state = learner_server()._state()
    if state is None:
        return {}
    cfg = config_get()
    root = psutil.Process(state[0])
    ports = set()
    for proc in [root, *root.children(recursive=True)]:
        # psutil 6 renamed connections() to net_connections()
        sockets = getattr(proc, "net_connections", None) or proc.connections
        ports |= {c.laddr.port for c in sockets(kind="tcp")
                  if c.raddr and c.raddr.port == cfg.mysql_port}
    conn = await aiomysql.connect(host=cfg.mysql_host, port=cfg.mysql_port, user=cfg.mysql_user,
                                  password=cfg.mysql_password, autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute("SELECT ID, DB, HOST FROM information_schema.PROCESSLIST "
                              "WHERE USER = %s", (cfg.mysql_user,))
            rows = await cur.fetchall()
    finally:
        conn.close()
    out: dict[str, list[int]] = {}
    for thread_id, db, host in rows:
        if host and host.rpartition(":")[2].isdigit() and int(host.rpartition(":")[2]) in ports:
            out.setdefault(db or "(none)", []).append(int(thread_id))
    return dict(sorted(out.items()))


def learner_async(body: str) -> str:
    """Run `body` (statements that may `await`) inside the learner's copy, through its
    manage.py, with its pools open around it: what it printed. ListingError with the error's
    last line if it raised. For checks of code that no view serves yet."""
    import textwrap

    script = ("import asyncio\nfrom common.db import pools_close, pools_open\n\n\n"
              "async def main():\n    await pools_open()\n    try:\n"
              + textwrap.indent(textwrap.dedent(body).strip("\n"), " " * 8)
              + "\n    finally:\n        await pools_close()\n\n\nasyncio.run(main())\n")
    return learner_manage("shell", "--no-imports", "-c", script)


def _plain(env: dict[str, str]) -> dict[str, str]:
    """The environment for a tool whose output a chapter prints: no colours (kernels force them)."""
    env = {k: v for k, v in env.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE", "PY_COLORS")}
    env["NO_COLOR"] = "1"
    return env


@dataclass
class TestRun:
    """What pytest said of the learner's tests: the test ids that passed and failed."""

    returncode: int
    passed: list[str]
    failed: list[str]  # failed or errored
    output: str = field(repr=False)  # pytest's whole report


def learner_pytest(*args: str, timeout: float = 180) -> TestRun:
    """`pytest ARGS` in the learner's copy, with its own pytest.ini and conftest.py, its settings
    and data (learner_env()), and without the reference project on the path."""
    done = subprocess.run(
        python_apart("pytest", "-q", "-rA", "--color=no", "-p", "no:cacheprovider", *args),
        cwd=learner_dir(), env=_plain(learner_env()),
        capture_output=True, text=True, timeout=timeout)
    lines = done.stdout.splitlines()
    ids = {kind: [ln.split(" ", 1)[1].split(" - ")[0] for ln in lines if ln.startswith(kind + " ")]
           for kind in ("PASSED", "FAILED", "ERROR")}
    return TestRun(done.returncode, ids["PASSED"], ids["FAILED"] + ids["ERROR"],
                   done.stdout + done.stderr)


def learner_ruff() -> list[str]:
    """ruff on the learner's copy with the project's own rules (pyproject.toml): its findings,
    `path:line:col: CODE message` each (an empty list: clean)."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    done = subprocess.run([ruff, "check", "--config", str(REPO_ROOT / "pyproject.toml"),
                           "--output-format", "concise", "--no-fix", "."], cwd=learner_dir(),
                          env=_plain(dict(os.environ)), capture_output=True, text=True, timeout=60)
    return [ln for ln in done.stdout.splitlines() if ln.count(":") >= 3]
