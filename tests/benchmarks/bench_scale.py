"""Scale: 1,000 simulated players in 20 rooms of 50 play full games over two uvicorn processes.

Both processes (ports 8300 and 8301, the default channel layer) share Redis and MySQL; in each
room half the players sit on each process, and the host's process (alternating by room) drives
it. After every room's lobby is full, each host starts its game (20 ms apart); each player
answers every question after a random delay. Measured: answer -> answer_ack latency, frames
lost (per player: one reply to each answer, one reveal per question, one finished), and each
server process's CPU and memory over the games.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil
from websockets.asyncio.client import ClientConnection

from workbook.chapters.client import ws_open

from .bench_broadcast import _redis_cpu_s
from .bench_game_broadcast import room_new, users_pick
from .harness import (
    ANCHOR_PORT,
    HOST,
    PROJECT_PORT,
    Options,
    Report,
    percentile,
    progress,
    ratio,
    scenario,
)
from .servers import ServerError, _free, layer_class
from .wsload import clients_close, tickets_issue

NAME = "scale"
PORTS = (PROJECT_PORT, ANCHOR_PORT)  # both serve the project here
SERVER_NAMES = ("bench-a", "bench-b")
MIB = 2**20
RETRY_PAUSE, RETRIES = 0.3, 10  # after `unavailable`, per player


@dataclass(frozen=True)
class Sizes:
    players: int
    rooms: int
    questions: int
    seconds: float
    delay: tuple[float, float]  # an answer's delay after its question arrives, uniform

    @property
    def per_room(self) -> int:
        return self.players // self.rooms


def _sizes(opts: Options) -> Sizes:
    return opts.pick(Sizes(1000, 20, 3, 5.0, (0.3, 3.0)), Sizes(10, 2, 1, 2.0, (0.05, 0.5)))


@contextmanager
def servers_two() -> Iterator[list]:
    """The project on both ports (bench-a, bench-b); yields the LiveServers."""
    from workbook.setup.liveserver import LiveServer, health_get

    pair = [
        LiveServer(HOST, port, name=name, extra_env={"QUIZ_PORT": str(port)})
        for port, name in zip(PORTS, SERVER_NAMES, strict=True)
    ]
    try:
        for server in pair:
            server.stop(quiet=True)  # ours, left by an interrupted run (our pid file only)
            _free(server.port)
            with contextlib.redirect_stdout(io.StringIO()):
                server.start(timeout=60)
            pid = server.pid()
            if pid is None or (health_get(HOST, server.port) or {}).get("pid") != pid:
                raise ServerError(f"the server on {server.port} is not the one we started")
        yield pair
    finally:
        for server in pair:
            with contextlib.redirect_stdout(io.StringIO()):
                server.stop(quiet=True)


@dataclass
class Player:
    user_id: int
    ticket: str
    room_id: str
    base: str
    host: bool
    delay: tuple[float, float]
    ws: ClientConnection | None = None
    sent: dict[int, float] = field(default_factory=dict)  # question_id -> send time
    acks: dict[int, float] = field(default_factory=dict)  # question_id -> latency (s)
    rejected: dict[int, str] = field(default_factory=dict)  # question_id -> error code
    replies: list[float] = field(default_factory=list)
    choices: dict[int, int] = field(default_factory=dict)
    unavailable: int = 0  # `unavailable` errors that made this player send an answer again
    retries: int = 0  # latency of every ack or rejection
    questions: set[int] = field(default_factory=set)
    reveals: set[int] = field(default_factory=set)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    lobby_full: asyncio.Event = field(default_factory=asyncio.Event)
    other_errors: list[str] = field(default_factory=list)
    tasks: set[asyncio.Task] = field(default_factory=set)

    async def _answer(self, qid: int, *, pause: float | None = None) -> None:
        """Answer after the random delay; or, with `pause`, send the same answer again (as
        bots.Bot does after an `unavailable` error: the server could not take the frame)."""
        if pause is None:
            await asyncio.sleep(random.uniform(*self.delay))
            self.sent[qid], self.choices[qid] = time.perf_counter(), random.randrange(4)
        else:
            await asyncio.sleep(pause)
            self.retries += 1
        with contextlib.suppress(Exception):
            await self.ws.send(
                json.dumps({"type": "answer", "question_id": qid, "choice": self.choices[qid]})
            )

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def read(self, room_size: int) -> None:
        assert self.ws is not None
        async for text in self.ws:
            now = time.perf_counter()
            frame = json.loads(text)
            kind = frame.get("type")
            if kind == "question" and frame["question_id"] not in self.questions:
                self.questions.add(frame["question_id"])
                self._spawn(self._answer(frame["question_id"]))
            elif kind == "answer_ack":
                qid = frame["question_id"]
                if qid in self.sent:
                    self.acks[qid] = now - self.sent[qid]
                    self.replies.append(self.acks[qid])
            elif kind == "reveal":
                self.reveals.add(frame["question_id"])
            elif kind == "finished":
                self.finished.set()
            elif kind == "lobby" and len(frame["players"]) >= room_size:
                self.lobby_full.set()
            elif kind == "error":
                pending = [q for q in self.sent if q not in self.acks and q not in self.rejected]
                if pending and frame.get("code") in (
                    "too_late",
                    "duplicate_answer",
                    "unknown_question",
                    "wrong_phase",
                ):
                    self.rejected[pending[-1]] = frame["code"]
                    self.replies.append(now - self.sent[pending[-1]])
                elif pending and frame.get("code") == "unavailable" and self.retries < RETRIES:
                    self.unavailable += 1
                    self._spawn(self._answer(pending[-1], pause=RETRY_PAUSE))
                else:
                    self.other_errors.append(frame.get("code", "?"))


async def _connect(players: list[Player], *, in_flight: int = 32) -> list[float]:
    gate = asyncio.Semaphore(in_flight)
    times: list[float] = []

    async def one(p: Player) -> None:
        async with gate:
            t0 = time.perf_counter()
            path = f"/ws/game/controller/{p.room_id}/{p.user_id}"
            p.ws = await ws_open(path, p.ticket, base=p.base, open_timeout=30, max_queue=256)
            times.append(time.perf_counter() - t0)

    await asyncio.gather(*(one(p) for p in players))
    return times


def _driven(servers: list, room_ids: set[str]) -> dict[int, int]:
    """How many of these rooms each server's log says it took the lease of (at some point)."""
    out = {}
    for server in servers:
        found = re.findall(
            r"room (\S+): now driven here", server.log_file.read_text(errors="replace")
        )
        out[server.port] = len(room_ids & set(found))
    return out


def _mysql_cpu_s() -> float:
    """CPU seconds of the local MariaDB/MySQL server processes (0 if none can be read)."""
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ("mariadbd", "mysqld"):
            with contextlib.suppress(psutil.Error):
                total += sum(proc.cpu_times()[:2])
    return total


@dataclass
class Sampler:
    """CPU and RSS of the server processes, sampled in the background."""

    procs: dict[int, psutil.Process]
    rss_peak: dict[int, int] = field(default_factory=dict)

    def cpu(self) -> dict[int, float]:
        return {port: sum(p.cpu_times()[:2]) for port, p in self.procs.items()}

    def rss(self) -> dict[int, int]:
        return {port: p.memory_info().rss for port, p in self.procs.items()}

    async def run(self) -> None:
        while True:
            for port, rss in self.rss().items():
                self.rss_peak[port] = max(self.rss_peak.get(port, 0), rss)
            await asyncio.sleep(0.25)


async def _play(opts: Options, servers: list, report: Report) -> None:
    size = _sizes(opts)
    bases = [s.url for s in servers]
    users = await asyncio.to_thread(users_pick, size.players)
    tickets = tickets_issue(users)
    rooms: list[list[Player]] = []
    for r in range(size.rooms):
        chunk = range(r * size.per_room, (r + 1) * size.per_room)
        host_ticket = tickets[chunk[0]]
        room_id = await asyncio.to_thread(
            room_new,
            base=bases[r % 2],
            ticket=host_ticket,
            questions=size.questions,
            seconds=size.seconds,
        )
        rooms.append(
            [
                Player(users[i], tickets[i], room_id, bases[(j + r) % 2], j == 0, size.delay)
                for j, i in enumerate(chunk)
            ]
        )
    players = [p for room in rooms for p in room]
    procs = {s.port: psutil.Process(s.pid()) for s in servers}
    sampler = Sampler(procs)
    rss_idle = sampler.rss()
    sampling = asyncio.create_task(sampler.run())
    readers: list[asyncio.Task] = []
    me = psutil.Process()
    try:
        progress(NAME, f"connecting {len(players)} players ({size.rooms} rooms)")
        started = time.perf_counter()
        hosts = [room[0] for room in rooms]
        handshakes = await _connect(hosts) + await _connect([p for p in players if not p.host])
        connect_s = time.perf_counter() - started
        readers = [asyncio.create_task(p.read(size.per_room)) for p in players]
        await asyncio.wait_for(asyncio.gather(*(h.lobby_full.wait() for h in hosts)), 60)
        rss_connected = sampler.rss()
        progress(NAME, f"all seated in {connect_s:.1f}s; starting {size.rooms} games")
        cpu0, me0, redis0 = sampler.cpu(), sum(me.cpu_times()[:2]), _redis_cpu_s()
        mysql0 = _mysql_cpu_s()
        started = time.perf_counter()
        for host in hosts:
            await host.ws.send(json.dumps({"type": "start"}))
            await asyncio.sleep(0.02)
        bound = size.questions * (size.seconds + 3.0) + 60
        waits = [asyncio.create_task(p.finished.wait()) for p in players]
        done, pending = await asyncio.wait(waits, timeout=bound)
        for task in pending:
            task.cancel()
        games_s = time.perf_counter() - started
        cpu1, me1, redis1 = sampler.cpu(), sum(me.cpu_times()[:2]), _redis_cpu_s()
        mysql1 = _mysql_cpu_s()
        progress(NAME, f"games over in {games_s:.1f}s ({len(pending)} players unfinished)")
    finally:
        sampling.cancel()
        for task in readers:
            task.cancel()
        await asyncio.gather(sampling, *readers, return_exceptions=True)
        await clients_close([p.ws for p in players if p.ws is not None])

    latencies = [lat for p in players for lat in p.acks.values()]
    answers = sum(len(p.sent) for p in players)
    acks = len(latencies)
    rejected = sum(len(p.rejected) for p in players)
    too_late = sum(1 for p in players for c in p.rejected.values() if c == "too_late")
    lost_replies = sum(size.questions - len(p.acks) - len(p.rejected) for p in players)
    lost_reveals = sum(size.questions - len(p.reveals) for p in players)
    lost_finished = sum(0 if p.finished.is_set() else 1 for p in players)
    lost = lost_replies + lost_reveals + lost_finished
    other = [c for p in players for c in p.other_errors]

    def ms(q: float, values: list[float] = latencies) -> float:
        return percentile(values, q) * 1000 if values else float("nan")

    replies = [lat for p in players for lat in p.replies]

    f = report.figures
    f.update(
        {
            "players": len(players),
            "rooms": size.rooms,
            "answers": answers,
            "acks": acks,
            "rejected": rejected,
            "too_late": too_late,
            "lost": lost,
            "lost_replies": lost_replies,
            "lost_reveals": lost_reveals,
            "lost_finished": lost_finished,
            "other_errors": len(other),
            "unavailable_retries": sum(p.retries for p in players),
            "ack_p50_ms": ms(50),
            "ack_p90_ms": ms(90),
            "ack_p99_ms": ms(99),
            "ack_max_ms": ms(100),
            "reply_p50_ms": ms(50, replies),
            "reply_p99_ms": ms(99, replies),
            "connect_s": connect_s,
            "handshake_p50_ms": percentile(handshakes, 50) * 1000,
            "handshake_p99_ms": percentile(handshakes, 99) * 1000,
            "games_s": games_s,
            "loadgen_cpu_s": me1 - me0,
            "redis_cpu_s": redis1 - redis0,
            "mysql_cpu_s": mysql1 - mysql0,
        }
    )
    lat = report.table(
        f"{len(players)} players, {size.rooms} rooms, {size.questions} questions of "
        f"{size.seconds:g} s: answer -> answer_ack latency, ms (any reply: ack or rejection); "
        "frames lost",
        [
            "answers",
            "acks",
            "rejected",
            "too_late",
            "p50",
            "p90",
            "p99",
            "max",
            "any reply p50",
            "any reply p99",
            "lost",
        ],
    )
    lat.add(
        answers,
        acks,
        rejected,
        too_late,
        ms(50),
        ms(90),
        ms(99),
        ms(100),
        ms(50, replies),
        ms(99, replies),
        lost,
    )
    proc = report.table(
        f"per server process over the games ({games_s:.1f} s wall): CPU, memory (MiB)",
        [
            "server",
            "port",
            "players",
            "rooms driven",
            "cpu s",
            "cpu % of a core",
            "rss idle",
            "rss seated",
            "rss peak",
        ],
    )
    driven = _driven(servers, {room[0].room_id for room in rooms})
    for server in servers:
        port, key = server.port, server.name
        cpu_s = cpu1[port] - cpu0[port]
        f[f"{key}.cpu_s"] = cpu_s
        f[f"{key}.cpu_pct"] = cpu_s / games_s * 100
        f[f"{key}.rss_idle_mib"] = rss_idle[port] / MIB
        f[f"{key}.rss_seated_mib"] = rss_connected[port] / MIB
        f[f"{key}.rss_peak_mib"] = sampler.rss_peak.get(port, 0) / MIB
        f[f"{key}.rooms_driven"] = driven[port]
        proc.add(
            key,
            port,
            sum(1 for p in players if p.base == server.url),
            driven[port],
            cpu_s,
            f[f"{key}.cpu_pct"],
            f[f"{key}.rss_idle_mib"],
            f[f"{key}.rss_seated_mib"],
            f[f"{key}.rss_peak_mib"],
        )
    proc.add(
        "load generator",
        "-",
        len(players),
        "-",
        me1 - me0,
        (me1 - me0) / games_s * 100,
        "-",
        "-",
        "-",
    )
    proc.add(
        "redis", 6379, "-", "-", redis1 - redis0, (redis1 - redis0) / games_s * 100, "-", "-", "-"
    )
    proc.add(
        "mysql", 3306, "-", "-", mysql1 - mysql0, (mysql1 - mysql0) / games_s * 100, "-", "-", "-"
    )
    a, b = (f"{s.name}.cpu_s" for s in servers)
    f["server_cpu_ms_per_answer"] = (f[a] + f[b]) * 1000 / max(1, answers)
    report.ratios["cpu_b_vs_a"] = ratio(f[b], f[a])
    report.target("lost", "<=", 0)
    if answers and too_late / answers > 0.01:
        report.notes.append(
            f"saturated: {too_late / answers:.0%} of the answers reached the room's driver after "
            f"the {size.seconds:g} s deadline (too_late): the drivers could not keep up with "
            f"{answers} answers in {size.questions} bursts at "
            f"{f['server_cpu_ms_per_answer']:.1f} server CPU ms per answer"
        )
    if f["unavailable_retries"]:
        report.notes.append(
            f"{f['unavailable_retries']} answers were sent again after an `unavailable` error "
            "(the server could not forward them to the room's driver), as a real client does; "
            "see the servers' logs for the cause"
        )
    if other:
        report.notes.append(f"unexpected error frames: {sorted(set(other))}")


async def _measure(opts: Options) -> Report:
    size = _sizes(opts)
    report = Report(
        NAME, f"{size.players} players in {size.rooms} rooms, full games over two uvicorn processes"
    )
    report.params = {
        "players": size.players,
        "rooms": size.rooms,
        "players_per_room": size.per_room,
        "questions": size.questions,
        "seconds": size.seconds,
        "answer_delay_s": list(size.delay),
        "servers": [f"{n} on {p}" for n, p in zip(SERVER_NAMES, PORTS, strict=True)],
        "server": "uvicorn --ws websockets-sansio --workers 1, twice, sharing Redis and MySQL",
        "placement": "player j (0-based) of room r on server (j + r) % 2; hosts connect "
        "first, so room r is driven by server r % 2; games start 20 ms apart once every "
        "lobby is full",
        "latency": "from the answer frame's send to its answer_ack (every player answers "
        "every question once, after the delay)",
        "lost": "per player: questions - (acks + rejections), questions - reveals, 1 - finished",
        "auto_advance": "the room opens the next question after the reveal pause by itself",
    }
    progress(NAME, f"starting the project on {PORTS[0]} and {PORTS[1]}")
    with servers_two() as servers:
        report.params["layer_class"] = layer_class(PORTS[0]).rsplit(".", 1)[-1]
        await _play(opts, servers, report)
    report.notes.append(
        "the load generator (one asyncio process with every socket), both servers, Redis and "
        "MySQL share the machine's cores: the latency includes waiting for CPU, and the "
        "servers' CPU is what they could get, not what they would use alone"
    )
    return report


@scenario(NAME, "1,000 players in 20 rooms, full games over two uvicorn processes")
def run(opts: Options) -> Report:
    return asyncio.run(_measure(opts))
