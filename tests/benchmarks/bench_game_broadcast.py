"""Room broadcast, game part: 50 players in one game room; one answers, time until all 50 have the
`progress` frame that answer caused.

A round: player k (the next one who has not answered the open question) sends
`{"type": "answer", ...}`; the round ends when every one of the 50 players has received
`{"type": "progress", "question_id": q, "answered": n}` for that answer. Between questions (not
timed) the host sends `next` after the reveal and every player receives the next `question`. The
room has 50 questions of 120 s, so no round runs into a deadline, and each player answers once per
question (50 rounds apart: far under the 20 frames/s rate limit).

Per channel layer the project runs in blocks interleaved with the anchor (the bare websockets
server, same client code, its broadcast frame padded to the progress frame's size).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import psutil
from websockets.asyncio.client import ClientConnection

from workbook.chapters.client import http
from workbook.setup.liveserver import health_get

from .bench_broadcast import Side, _figures, _interleaved, _redis_cpu_s
from .harness import (
    ANCHOR_PORT,
    HOST,
    PROJECT_PORT,
    Options,
    Report,
    cpu_ratio_put,
    progress,
    ratio,
    scenario,
)
from .servers import anchor_server, layer_class, project_server
from .wsload import Room, clients_close, clients_open, tickets_issue

NAME = "broadcast_game"
PLAYERS = 50
QUESTIONS, SECONDS = 50, 120  # the most a room allows: rounds never meet a deadline
P50_TARGET, P99_TARGET = 2.0, 4.0
LAYERS = ("inbox", "redis")  # the default layer and channels_redis' stock one
ANCHOR_FRAME_EMPTY = len('{"type":"message","message":"","user_id":0,"room":"g"}')


def _sizes(opts: Options) -> tuple[int, int, int]:
    """Measured rounds per server, warm-up rounds, rounds per interleaved block."""
    return opts.pick(400, 20), opts.pick(30, 3), opts.pick(25, 10)


def users_pick(count: int) -> list[int]:
    """Ids of `count` benchmark players, `bench-1` to `bench-<count>` (the game looks every player
    up in the study database). Missing ones are created, so a fresh database works and a second
    run reuses them."""
    import pymysql

    from course_project.config import config_get

    cfg = config_get()
    conn = pymysql.connect(
        host=cfg.mysql_host,
        port=cfg.mysql_port,
        user=cfg.mysql_user,
        password=cfg.mysql_password,
        database=cfg.study_db,
        connect_timeout=5,
    )
    wanted = [f"bench-{n}" for n in range(1, count + 1)]
    with conn, conn.cursor() as cur:

        def have() -> dict[str, int]:
            cur.execute("SELECT nickname, MIN(id) FROM user WHERE nickname LIKE 'bench-%%' "
                        "GROUP BY nickname")
            return dict(cur.fetchall())

        ids = have()
        missing = [(name,) for name in wanted if name not in ids]
        if missing:
            cur.executemany("INSERT INTO user (nickname) VALUES (%s)", missing)
            conn.commit()
            ids = have()
    return [ids[name] for name in wanted]


def room_new(*, base: str, ticket: str, questions: int, seconds: float) -> str:
    reply = http(
        "POST", "/api/rooms", {"questions": questions, "seconds": seconds}, ticket=ticket, base=base
    )
    if reply.status != 201:
        raise RuntimeError(f"POST /api/rooms: {reply}")
    return reply.body["room_id"]


@dataclass
class GameRoom:
    """50 players in one game room, played one answer at a time (the `Room` interface of
    wsload: round(tag) -> seconds or None, lost, close())."""

    conns: list[ClientConnection]
    lost: int = 0
    errors: list[dict] = field(default_factory=list)
    progress_len: int = 0  # bytes of the last progress frame
    question: int | None = None  # the open question's id
    answered: int = 0  # answers accepted in it so far
    _expect: tuple[int, int] | None = None  # (question_id, answered) awaited
    _count: int = 0
    _seen: dict[tuple[str, int], int] = field(default_factory=dict)  # (type, qid) -> receivers
    _done: asyncio.Future | None = None
    _wait: tuple[str, int] | None = None
    _readers: list[asyncio.Task] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._readers = [asyncio.create_task(self._read(ws)) for ws in self.conns]

    @property
    def deflate(self) -> bool:
        return bool(self.conns and self.conns[0].protocol.extensions)

    def _resolve(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(time.perf_counter())

    async def _read(self, ws: ClientConnection) -> None:
        async for text in ws:
            frame = json.loads(text)
            kind = frame.get("type")
            if kind == "progress":
                if (frame["question_id"], frame["answered"]) == self._expect:
                    self.progress_len = len(text)
                    self._count += 1
                    if self._count == len(self.conns):
                        self._resolve()
            elif kind in ("question", "reveal"):
                key = (kind, frame["question_id"])
                self._seen[key] = self._seen.get(key, 0) + 1
                if key == self._wait and self._seen[key] == len(self.conns):
                    self._resolve()
            elif kind == "lobby":
                if self._wait == ("lobby", 0) and len(frame["players"]) == len(self.conns):
                    self._resolve()
            elif kind == "error":
                self.errors.append(frame)

    async def _until(self, key: tuple[str, int], send: dict | None, timeout: float) -> None:
        self._wait, self._done = key, asyncio.get_running_loop().create_future()
        if key[0] != "lobby" and self._seen.get(key, 0) == len(self.conns):
            self._resolve()
        if send is not None:
            await self.conns[0].send(json.dumps(send))
        try:
            await asyncio.wait_for(self._done, timeout)
        except TimeoutError:
            raise RuntimeError(
                f"not every player got {key} within {timeout} s: {self.errors[-3:]}"
            ) from None
        finally:
            self._wait = None

    async def start(self, *, timeout: float = 15.0) -> None:
        """Everyone seated, the host (player 0) starts: the first question is open."""
        await self._until(("lobby", 0), None, timeout)
        self._wait = None
        await self._question_wait({"type": "start"}, timeout)

    async def _question_wait(self, send: dict, timeout: float) -> None:
        before = set(self._seen)
        self._wait, self._done = ("question", -1), asyncio.get_running_loop().create_future()
        await self.conns[0].send(json.dumps(send))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the new question's id is known once it arrives
            new = [k for k in self._seen if k[0] == "question" and k not in before]
            if new:
                self.question, self.answered = new[0][1], 0
                await self._until(new[0], None, max(0.1, deadline - time.monotonic()))
                return
            await asyncio.sleep(0.005)
        raise RuntimeError(f"no question frame within {timeout} s: {self.errors[-3:]}")

    async def round(self, tag: str, *, timeout: float = 5.0) -> float | None:
        """Seconds from one player's answer until all players received its progress frame."""
        if self.question is None:
            raise RuntimeError("the game is not started")
        if self.answered == len(self.conns):  # every one answered: reveal, then next question
            await self._until(("reveal", self.question), None, timeout)
            await self._question_wait({"type": "next"}, timeout)
        sender = self.conns[self.answered]
        self.answered += 1
        self._expect, self._count = (self.question, self.answered), 0
        self._done = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        await sender.send(
            json.dumps(
                {"type": "answer", "question_id": self.question, "choice": self.answered % 4}
            )
        )
        try:
            return await asyncio.wait_for(self._done, timeout) - started
        except TimeoutError:
            self.lost += 1
            return None
        finally:
            self._expect = None

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await clients_close(self.conns)


@dataclass
class PaddedRoom(Room):
    """The anchor's chat room, its broadcast frame padded to `size` bytes."""

    size: int = 0

    async def round(self, tag: str, *, timeout: float = 5.0) -> float | None:
        return await super().round(tag.ljust(self.size - ANCHOR_FRAME_EMPTY, "."), timeout=timeout)


def _progress_size() -> int:
    """Bytes of a typical progress frame as the project sends it (2-digit id and count)."""
    from answer_game.rules import ProgressChanged

    frame = ProgressChanged(question_id=10, answered=25, total=PLAYERS).frame()
    return len(json.dumps(frame, ensure_ascii=False, separators=(",", ":")))


async def _game_room(port: int, users: list[int], tickets: list[str]) -> GameRoom:
    base = f"http://{HOST}:{port}"
    room_id = await asyncio.to_thread(
        room_new, base=base, ticket=tickets[0], questions=QUESTIONS, seconds=SECONDS
    )
    paths = [f"/ws/game/controller/{room_id}/{uid}" for uid in users]
    opened = await clients_open(base, paths, tickets, in_flight=16)
    room = GameRoom(opened.conns)
    await room.start()
    return room


async def _layer_measure(
    opts: Options, layer: str, anchor: Side, users: list[int], tickets: list[str]
) -> tuple[str, dict, dict, GameRoom]:
    rounds, warmup, block = _sizes(opts)
    progress(NAME, f"{layer}: starting the project on {PROJECT_PORT}")
    with project_server(layer) as pid:
        cls = layer_class().rsplit(".", 1)[-1]
        game = await _game_room(PROJECT_PORT, users, tickets)
        project = Side(game, psutil.Process(pid))
        progress(NAME, f"{layer}: {rounds} rounds interleaved with the anchor")
        redis_cpu = _redis_cpu_s()
        try:
            await _interleaved(anchor, project, rounds=rounds, warmup=warmup, block=block)
        finally:
            await game.close()
        redis_cpu = _redis_cpu_s() - redis_cpu
        queued = ((health_get(HOST, PROJECT_PORT) or {}).get("game") or {}).get(
            "frames_queued_behind")
    a, p = _figures(anchor), _figures(project)
    p["redis_cpu_ms_per_round"] = redis_cpu * 1000 / (rounds + warmup)
    p["frames_queued_behind"] = queued  # writes that stalled (answer_game/fanout.py); 0 expected
    if game.errors:
        raise RuntimeError(f"{len(game.errors)} error frames, e.g. {game.errors[:3]}")
    return cls, a, p, game


async def _measure(opts: Options, layers: tuple[str, ...]) -> Report:
    rounds, warmup, block = _sizes(opts)
    report = Report(NAME, "game room broadcast, 50 players, answer until all got its progress")
    report.params = {
        "players": PLAYERS,
        "rounds": rounds,
        "warmup_rounds": warmup,
        "block": block,
        "room": {"questions": QUESTIONS, "seconds": SECONDS},
        "round": "one player sends an answer to the open question; ends when all 50 players "
        "received the progress frame {question_id, answered: n} it caused (the sender also "
        "gets answer_ack). Players answer in turn; after the 50th answer the host waits for "
        "the reveal, sends next and all 50 get the question (untimed)",
        "layers": list(layers),
        "server": "uvicorn --ws websockets-sansio --workers 1",
        "anchor": "websockets.asyncio.server + broadcast(), subprocess, no Django/Redis; one "
        "client sends a chat frame, all 50 get a frame padded to the progress frame's size",
    }
    table = report.table(
        f"latency from an answer until all {PLAYERS} players received its progress frame, ms "
        f"({rounds} rounds each, interleaved blocks of {block} with the anchor); server CPU ms "
        "per round",
        [
            "server",
            "layer class",
            "p50",
            "p90",
            "p99",
            "max",
            "lost",
            "cpu",
            "redis cpu",
            "p50/anchor",
            "p99/anchor",
        ],
    )
    users = await asyncio.to_thread(users_pick, PLAYERS)
    tickets = tickets_issue(users)
    size = _progress_size()
    with anchor_server() as anchor_pid:
        opened = await clients_open(f"http://{HOST}:{ANCHOR_PORT}", ["/ws/g/"] * PLAYERS, tickets)
        room = PaddedRoom(opened.conns, size=size)
        anchor = Side(room, psutil.Process(anchor_pid))
        try:
            for layer in layers:
                cls, a, p, game = await _layer_measure(opts, layer, anchor, users, tickets)
                report.params[f"{layer}.progress_frame_bytes_last"] = game.progress_len
                for who, figs in (("anchor", a), ("project", p)):
                    for key, value in figs.items():
                        report.figures[f"{layer}.{who}_{key}"] = value
                r50 = report.ratios[f"{layer}.p50_vs_anchor"] = ratio(p["p50_ms"], a["p50_ms"])
                r99 = report.ratios[f"{layer}.p99_vs_anchor"] = ratio(p["p99_ms"], a["p99_ms"])
                cpu_ratio_put(report, f"{layer}.cpu_vs_anchor", p["cpu_ms_per_round"],
                              a["cpu_ms_per_round"])
                report.target(f"{layer}.p50_vs_anchor", "<=", P50_TARGET)
                report.target(f"{layer}.p99_vs_anchor", "<=", P99_TARGET)
                table.add(
                    "anchor",
                    "(bare websockets)",
                    a["p50_ms"],
                    a["p90_ms"],
                    a["p99_ms"],
                    a["p100_ms"],
                    a["lost"],
                    a["cpu_ms_per_round"],
                    "-",
                    1.0,
                    1.0,
                )
                table.add(
                    f"project [{layer}]",
                    cls,
                    p["p50_ms"],
                    p["p90_ms"],
                    p["p99_ms"],
                    p["p100_ms"],
                    p["lost"],
                    p["cpu_ms_per_round"],
                    p["redis_cpu_ms_per_round"],
                    r50,
                    r99,
                )
                progress(NAME, f"{layer}: p50 {r50:.2f}x, p99 {r99:.2f}x the anchor; "
                         f"{p['frames_queued_behind']} frames took a consumer's queue")
        finally:
            await anchor.room.close()
    report.params["anchor_frame_bytes"] = size
    report.params["permessage_deflate"] = room.deflate
    report.notes.append(
        "each project round includes what the driver does per answer: the rules' state "
        "transition, an INSERT into MySQL (the answer is durable before anyone hears of it), "
        "then the writes to the 50 sockets (answer_game/fanout.py); the anchor only relays"
    )
    report.notes.append(
        "one asyncio client process drives all sockets; on a 2-core machine it competes with "
        "uvicorn, Redis and MySQL for CPU, which inflates both sides of each ratio"
    )
    report.notes.append(
        "cpu: user+system CPU of the server process per measured round; redis cpu: Redis' own "
        "CPU per project round (Redis is shared with anything else running on the machine)"
    )
    return report


@scenario(NAME, "game room broadcast: project (per channel layer) vs a bare websockets server")
def run(opts: Options) -> Report:
    return asyncio.run(_measure(opts, opts.pick(LAYERS, opts.layers)))
