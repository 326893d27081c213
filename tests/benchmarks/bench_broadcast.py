"""Room broadcast, chat part: 50 clients in one chat room, one sends, time until all 50 have it.

Each channel layer variant of the project (uvicorn --ws websockets-sansio, 1 worker) is measured
in blocks interleaved with the anchor (a bare websockets server in a subprocess, same clients,
same frames), so each ratio compares figures taken over the same minutes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import psutil

from .harness import (
    ANCHOR_PORT,
    HOST,
    PROJECT_PORT,
    Options,
    Report,
    cpu_ratio_put,
    percentile,
    progress,
    ratio,
    scenario,
)
from .servers import anchor_server, layer_class, project_server
from .wsload import Room, clients_open, tickets_issue

NAME = "broadcast_chat"
CLIENTS = 50
PAUSE_S = 0.005  # between rounds: a chat room is not a tight loop
P50_TARGET, P99_TARGET = 2.0, 4.0
LOST_LIMIT = 10  # rounds that time out (5 s each) before a run gives up on a server


def _sizes(opts: Options) -> tuple[int, int, int]:
    """Measured rounds per server, warm-up rounds, rounds per interleaved block."""
    return opts.pick(600, 20), opts.pick(30, 3), opts.pick(25, 10)


async def _room(port: int, room: str, tickets: list[str]) -> Room:
    base = f"http://{HOST}:{port}"
    opened = await clients_open(base, [f"/ws/chat/{room}/"] * len(tickets), tickets)
    return Room(opened.conns)


@dataclass
class Side:
    """One server under measurement: its room of clients, its process, what was measured."""

    room: Room
    process: psutil.Process
    latencies: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    lost: int = 0

    def cpu(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def reset(self) -> None:
        self.latencies, self.cpu_s, self.lost = [], 0.0, self.room.lost


async def _block(side: Side, label: str, n: int, *, keep: bool = True) -> None:
    cpu = side.cpu()
    for i in range(n):
        took = await side.room.round(f"{label}-{i}")
        if took is not None and keep:
            side.latencies.append(took)
        if side.room.lost > LOST_LIMIT:
            raise RuntimeError(f"{side.room.lost} rounds did not reach all {CLIENTS} clients")
        await asyncio.sleep(PAUSE_S)
    if keep:
        side.cpu_s += side.cpu() - cpu


async def _interleaved(anchor: Side, project: Side, *, rounds: int, warmup: int, block: int):
    await _block(anchor, "warm-a", warmup, keep=False)
    await _block(project, "warm-p", warmup, keep=False)
    anchor.reset()
    project.reset()
    blocks = -(-rounds // block)
    for b in range(blocks):
        n = min(block, rounds - b * block)
        pair = [(anchor, "a"), (project, "p")]
        for side, label in pair if b % 2 == 0 else reversed(pair):  # ABBA against drift
            await _block(side, f"{label}{b}", n)
    anchor.lost = anchor.room.lost - anchor.lost
    project.lost = project.room.lost - project.lost


def _ms(values: list[float], q: float) -> float:
    return percentile(values, q) * 1000 if values else float("nan")


def _redis_cpu_s() -> float:
    """CPU seconds Redis has used so far (INFO cpu): the project's cost beyond its own process."""
    import redis

    from course_project.config import config_get

    with redis.Redis.from_url(config_get().redis_url) as r:
        info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _figures(side: Side) -> dict[str, float]:
    figs = {f"p{q}_ms": _ms(side.latencies, q) for q in (50, 90, 99, 100)}
    figs["cpu_ms_per_round"] = side.cpu_s * 1000 / max(1, len(side.latencies))
    figs["lost"] = side.lost
    return figs


async def _layer_measure(
    opts: Options, layer: str, anchor: Side, tickets: list[str]
) -> tuple[str, dict, dict]:
    rounds, warmup, block = _sizes(opts)
    progress(NAME, f"{layer}: starting the project on {PROJECT_PORT}")
    with project_server(layer) as pid:
        cls = layer_class().rsplit(".", 1)[-1]
        project = Side(await _room(PROJECT_PORT, "bench-room", tickets), psutil.Process(pid))
        progress(NAME, f"{layer}: {rounds} rounds interleaved with the anchor")
        redis_cpu = _redis_cpu_s()
        p_deflate = project.room.deflate
        try:
            await _interleaved(anchor, project, rounds=rounds, warmup=warmup, block=block)
        finally:
            await project.room.close()
        redis_cpu = _redis_cpu_s() - redis_cpu
    a, p = _figures(anchor), _figures(project)
    # Redis also served the warm-up rounds: spread over every round the project ran.
    p["redis_cpu_ms_per_round"] = redis_cpu * 1000 / (rounds + warmup)
    if p_deflate != anchor.room.deflate:
        raise RuntimeError("the project and the anchor disagree on permessage-deflate")
    return cls, a, p


async def _measure(opts: Options, layers: tuple[str, ...]) -> Report:
    rounds, warmup, block = _sizes(opts)
    report = Report(NAME, "chat room broadcast, 50 clients, time until all received")
    report.params = {
        "clients": CLIENTS,
        "rounds": rounds,
        "warmup_rounds": warmup,
        "block": block,
        "pause_s": PAUSE_S,
        "layers": list(layers),
        "server": "uvicorn --ws websockets-sansio --workers 1",
        "anchor": "websockets.asyncio.server + broadcast(), subprocess, no Django/Redis",
    }
    table = report.table(
        f"latency until all {CLIENTS} received, ms ({rounds} rounds each, interleaved blocks of "
        f"{block} with the anchor); server CPU ms per round",
        ["server", "layer class", "p50", "p90", "p99", "max", "lost", "cpu", "redis cpu",
         "p50/anchor", "p99/anchor"],
    )  # fmt: skip
    tickets = tickets_issue(range(1, CLIENTS + 1))
    with anchor_server() as anchor_pid:
        room = await _room(ANCHOR_PORT, "bench-anchor", tickets)
        anchor = Side(room, psutil.Process(anchor_pid))
        report.params["permessage_deflate"] = room.deflate
        try:
            for layer in layers:
                cls, a, p = await _layer_measure(opts, layer, anchor, tickets)
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
                    "anchor", "(bare websockets)", a["p50_ms"], a["p90_ms"], a["p99_ms"],
                    a["p100_ms"], a["lost"], a["cpu_ms_per_round"], "-", 1.0, 1.0,
                )  # fmt: skip
                table.add(
                    f"project [{layer}]", cls, p["p50_ms"], p["p90_ms"], p["p99_ms"],
                    p["p100_ms"], p["lost"], p["cpu_ms_per_round"], p["redis_cpu_ms_per_round"],
                    r50, r99,
                )  # fmt: skip
                progress(NAME, f"{layer}: p50 {r50:.2f}x, p99 {r99:.2f}x the anchor")
        finally:
            await anchor.room.close()
    report.notes.append(
        "one asyncio client process drives all sockets; on a 2-core machine it competes with "
        "uvicorn and Redis for CPU, which inflates both sides of each ratio"
    )
    report.notes.append(
        "cpu: user+system CPU of the server process per measured round (the anchor's covers "
        "its blocks only); redis cpu: Redis' own CPU per project round (Redis is shared with "
        "anything else running on the machine)"
    )
    return report


@scenario(NAME, "chat room broadcast: project (per channel layer) vs a bare websockets server")
def run(opts: Options) -> Report:
    return asyncio.run(_measure(opts, opts.layers))
