"""Idle connections: how much memory one uvicorn worker spends per open chat websocket (ticket
checked, group joined, consumer waiting on the channel layer), and how fast it accepts them.

Memory per connection = (RSS after N connections - RSS before) / N, measured after a warm-up
that opens and closes a few connections, so first-use allocations are not counted. The anchor
(bare websockets server) holds the same connections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import psutil

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
from .servers import anchor_server, project_server
from .wsload import Room, clients_close, clients_open, tickets_issue

NAME = "connections"
KIB_TARGET = 40.0
IN_FLIGHT = 64  # handshakes in progress at once
WARMUP = 20


async def _rss_settled(proc: psutil.Process, seconds: float = 1.0) -> int:
    await asyncio.sleep(seconds)
    return proc.memory_info().rss


async def _hold(
    port: int, pid: int, n: int, rooms: int, tickets: list[str]
) -> tuple[dict[str, float], bool]:
    base = f"http://{HOST}:{port}"
    proc = psutil.Process(pid)
    warm = await clients_open(base, ["/ws/chat/bench-warm/"] * WARMUP, tickets[:WARMUP])
    await clients_close(warm.conns)
    before = await _rss_settled(proc)
    paths = [f"/ws/chat/bench-idle-{i % rooms}/" for i in range(n)]
    cpu0 = sum(proc.cpu_times()[:2])
    opened = await clients_open(base, paths, tickets, in_flight=IN_FLIGHT)
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    try:
        after = await _rss_settled(proc, 2.0)
        # Still alive and still in their rooms: one broadcast in room 0 reaches all its members.
        members = [ws for ws, path in zip(opened.conns, paths, strict=True) if path == paths[0]]
        room = Room(members)
        took = await room.round("still-here", timeout=10)
        await room.close()
        if took is None:
            raise RuntimeError(f"a broadcast to {len(members)} held connections did not arrive")
    finally:
        started = time.perf_counter()
        await clients_close(opened.conns)
        closed_s = time.perf_counter() - started
    return {
        "kib_per_conn": (after - before) / n / 1024,
        "rss_before_mib": before / 2**20,
        "rss_after_mib": after / 2**20,
        "accept_s": opened.wall_s,
        "accepts_per_s": n / opened.wall_s,
        "handshake_p50_ms": percentile(opened.handshake_s, 50) * 1000,
        "handshake_p99_ms": percentile(opened.handshake_s, 99) * 1000,
        "server_cpu_ms_per_accept": cpu * 1000 / n,
        "broadcast_ms": took * 1000,
        "close_s": closed_s,
    }, opened.deflate


async def _measure(opts: Options, layers: tuple[str, ...]) -> Report:
    n, rooms = opts.pick(2000, 60), opts.pick(20, 3)
    report = Report(NAME, f"{n} idle chat websockets held by one uvicorn worker")
    report.params = {
        "connections": n,
        "rooms": rooms,
        "handshakes_in_flight": IN_FLIGHT,
        "warmup_connections": WARMUP,
        "layers": list(layers),
    }
    table = report.table(
        f"{n} connections in {rooms} rooms: memory and accept time",
        ["server", "KiB/conn", "RSS before MiB", "RSS after MiB", "accept s", "accepts/s",
         "handshake p50 ms", "p99 ms", "cpu ms/accept", "KiB/anchor", "accept/anchor"],
    )  # fmt: skip
    tickets = tickets_issue(range(1, n + 1))
    servers: list[tuple[str, Callable[[], AbstractContextManager[int]], int]] = [
        ("anchor", anchor_server, ANCHOR_PORT),
        *((f"project [{layer}]", lambda la=layer: project_server(la), PROJECT_PORT)
          for layer in layers),
    ]  # fmt: skip
    figures: dict[str, dict[str, float]] = {}
    for label, server, port in servers:
        progress(NAME, f"{label}: opening {n} connections")
        with server() as pid:
            figs, deflate = await _hold(port, pid, n, rooms, tickets)
            figures[label] = figs
            report.params.setdefault("permessage_deflate", {})[label] = deflate
        progress(NAME, f"{label}: {figs['kib_per_conn']:.1f} KiB/conn, {figs['accept_s']:.1f}s")
    anchor = figures["anchor"]
    for label, figs in figures.items():
        key = label.removeprefix("project [").removesuffix("]")
        for name, value in figs.items():
            report.figures[f"{key}.{name}"] = value
        mem_ratio = ratio(figs["kib_per_conn"], anchor["kib_per_conn"])
        accept_ratio = ratio(figs["accept_s"], anchor["accept_s"])
        if label != "anchor":
            report.ratios[f"{key}.memory_vs_anchor"] = mem_ratio
            report.ratios[f"{key}.accept_time_vs_anchor"] = accept_ratio
            report.target(f"{key}.kib_per_conn", "<=", KIB_TARGET)
        table.add(
            label, figs["kib_per_conn"], figs["rss_before_mib"], figs["rss_after_mib"],
            figs["accept_s"], figs["accepts_per_s"], figs["handshake_p50_ms"],
            figs["handshake_p99_ms"], figs["server_cpu_ms_per_accept"], mem_ratio, accept_ratio,
        )  # fmt: skip
    report.notes.append(
        "the clients offer permessage-deflate, as browsers do; where the server accepts it, "
        "each connection keeps a zlib compressor and decompressor (see params.permessage_deflate)"
    )
    report.notes.append(
        "RSS deltas include allocator slack; the client process (one asyncio loop opening "
        f"{IN_FLIGHT} handshakes at a time) shares the 2 cores with the server"
    )
    return report


@scenario(NAME, "idle chat websockets per worker: KiB per connection, time to accept")
def run(opts: Options) -> Report:
    return asyncio.run(_measure(opts, opts.layers))
