"""Room broadcast through the learner's chat, as the chapters build it: 50 clients in one chat room,
one sends, time until all 50 have it; for the copy as chapter 05 leaves it (the stock
AsyncJsonWebsocketConsumer on channels_redis' stock RedisChannelLayer), the copy as chapter 10
leaves it (ResilientConsumer on the InboxChannelLayer, the reference's), and a bare `websockets`
server (the anchor).

Each copy is built from the chapters' listings into a temporary folder and served by the learner's
server (uvicorn, one worker, on the benchmark's project port, with the copy's own Redis database),
one copy at a time, in blocks interleaved with the anchor.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import tempfile
from pathlib import Path

from .bench_broadcast import CLIENTS, Side, _interleaved, _ms, _room
from .harness import ANCHOR_PORT, PROJECT_PORT, Options, Report, progress, ratio, scenario
from .servers import anchor_server
from .wsload import tickets_issue

NAME = "broadcast_chapters"
COPIES = {"chapter 05": 5, "chapter 10": 10}  # label -> the chapter the copy is built through


def _sizes(opts: Options) -> tuple[int, int, int]:
    """Measured rounds per server, warm-up rounds, rounds per interleaved block."""
    return opts.pick(300, 20), opts.pick(20, 3), opts.pick(25, 10)


async def _copy_measure(opts: Options, label: str, root: Path, anchor: Side) -> dict[str, float]:
    import psutil

    from workbook.chapters.learner import LearnerServer
    from workbook.chapters.mine import learner_tickets

    rounds, warmup, block = _sizes(opts)
    server = LearnerServer(root, PROJECT_PORT)
    progress(NAME, f"{label}: serving the copy on {PROJECT_PORT}")
    with contextlib.redirect_stdout(io.StringIO()):
        server.start()
    try:
        if not server.answers():
            raise RuntimeError(f"{label}: the copy does not serve: {server.problem()}")
        # issued by the copy's own code: chapter 05's still signs with startproject's key
        tickets = learner_tickets(range(1, CLIENTS + 1), root=root)
        copy = Side(await _room(PROJECT_PORT, f"bench-{COPIES[label]:02d}", tickets),
                    psutil.Process(server._state()[0]))
        try:
            await _interleaved(anchor, copy, rounds=rounds, warmup=warmup, block=block)
        finally:
            await copy.room.close()
    finally:
        server.stop(quiet=True)
    return {"p50_ms": _ms(copy.latencies, 50), "p90_ms": _ms(copy.latencies, 90),
            "p99_ms": _ms(copy.latencies, 99), "lost": copy.lost,
            "anchor_p50_ms": _ms(anchor.latencies, 50), "anchor_p90_ms": _ms(anchor.latencies, 90),
            "anchor_p99_ms": _ms(anchor.latencies, 99), "anchor_lost": anchor.lost}


async def _measure(opts: Options) -> Report:
    from workbook.chapters.learner_copy import build

    rounds, warmup, block = _sizes(opts)
    report = Report(NAME, "the learner's chat after chapter 05 and after chapter 10 vs a bare "
                          "websockets server, 50 clients")
    report.params = {"clients": CLIENTS, "rounds": rounds, "warmup_rounds": warmup,
                     "block": block, "copies": {k: f"built through chapter {v:02d}"
                                                for k, v in COPIES.items()},
                     "server": "the learner's server: uvicorn --reload, one worker",
                     "anchor": "websockets.asyncio.server + broadcast(), subprocess"}
    table = report.table(
        f"latency until all {CLIENTS} received, ms ({rounds} rounds each, interleaved blocks of "
        f"{block} with the anchor)",
        ["server", "p50", "p90", "p99", "lost", "p50/anchor", "p99/anchor"])
    tickets = tickets_issue(range(1, CLIENTS + 1))
    with tempfile.TemporaryDirectory(prefix="bench-chapters-") as tmp:
        roots = {}
        for label, chapter in COPIES.items():
            progress(NAME, f"{label}: building the copy from the chapters' listings")
            with contextlib.redirect_stdout(io.StringIO()):
                roots[label] = Path(tmp) / f"copy{chapter:02d}"
                build(roots[label], chapter)
        import psutil

        with anchor_server() as anchor_pid:
            anchor = Side(await _room(ANCHOR_PORT, "bench-anchor", tickets),
                          psutil.Process(anchor_pid))
            try:
                for label in COPIES:
                    figs = await _copy_measure(opts, label, roots[label], anchor)
                    key = label.replace(" ", "")
                    for name, value in figs.items():
                        report.figures[f"{key}.{name}"] = value
                    r50 = report.ratios[f"{key}.p50_vs_anchor"] = ratio(figs["p50_ms"],
                                                                        figs["anchor_p50_ms"])
                    r99 = report.ratios[f"{key}.p99_vs_anchor"] = ratio(figs["p99_ms"],
                                                                        figs["anchor_p99_ms"])
                    table.add(f"anchor (beside {label})", figs["anchor_p50_ms"],
                              figs["anchor_p90_ms"], figs["anchor_p99_ms"], figs["anchor_lost"],
                              1.0, 1.0)
                    table.add(f"the copy after {label}", figs["p50_ms"], figs["p90_ms"],
                              figs["p99_ms"], figs["lost"], r50, r99)
                    progress(NAME, f"{label}: p50 {r50:.2f}x, p99 {r99:.2f}x the anchor")
            finally:
                await anchor.room.close()
    report.ratios["chapter10_vs_chapter05.p50"] = ratio(report.figures["chapter10.p50_ms"],
                                                        report.figures["chapter05.p50_ms"])
    report.notes.append("each copy is compared with the anchor's blocks that ran beside it")
    return report


@scenario(NAME, "the learner's chat (chapter 05, chapter 10) vs a bare websockets server")
def run(opts: Options) -> Report:
    return asyncio.run(_measure(opts))
