"""The guide's user lookup four ways, in-process, 32 at a time, against the real MySQL:

    raw          aiomysql pool: acquire, cursor, execute, fetchone (the anchor)
    DBExecute    common.dbexecute.DBExecute(sql, (uid,)).fetchone() on the same pool
    async ORM    StudyUser.objects.only("id", "nickname").aget(pk=uid)
    sync ORM     the same query's .get() through sync_to_async

Each path runs for a fixed time, the four in turn, repeated in rotated order, so a noisy minute
hurts them all alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from .harness import Options, Report, percentile, progress, ratio, scenario

NAME = "db_lookup"
SQL = "SELECT id, nickname FROM user WHERE id=%s"
CONCURRENCY = 32
Lookup = Callable[[int], Awaitable[tuple]]
AIOMYSQL_PATHS = ("raw aiomysql", "DBExecute")


def _paths() -> dict[str, Lookup]:
    from asgiref.sync import sync_to_async

    from common.db import pool_get
    from common.dbexecute import DBExecute
    from players.models import StudyUser

    async def raw(uid: int) -> tuple:
        async with pool_get("study").acquire() as conn:
            async with conn.cursor() as cur:
                await cur.execute(SQL, (uid,))
                return await cur.fetchone()

    async def dbexecute(uid: int) -> tuple:
        return await DBExecute(SQL, (uid,)).fetchone()

    async def orm_async(uid: int) -> tuple:
        user = await StudyUser.objects.only("id", "nickname").aget(pk=uid)
        return (user.id, user.nickname)

    def _get(uid: int) -> tuple:
        user = StudyUser.objects.only("id", "nickname").get(pk=uid)
        return (user.id, user.nickname)

    async def orm_sync(uid: int) -> tuple:
        return await sync_to_async(_get)(uid)

    return {"raw aiomysql": raw, "DBExecute": dbexecute, "async ORM": orm_async,
            "sync ORM + sync_to_async": orm_sync}  # fmt: skip


async def _run_for(lookup: Lookup, uids: list[int], seconds: float) -> tuple[int, list[float]]:
    """Lookups done by CONCURRENCY workers in `seconds`, and each one's latency."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    latencies: list[float] = []

    async def worker(k: int) -> None:
        i = k
        while loop.time() < deadline:
            started = time.perf_counter()
            await lookup(uids[i % len(uids)])
            latencies.append(time.perf_counter() - started)
            i += CONCURRENCY

    await asyncio.gather(*(worker(k) for k in range(CONCURRENCY)))
    return len(latencies), latencies


async def _measure(opts: Options) -> Report:
    import django

    django.setup()
    from asgiref.sync import sync_to_async
    from django.conf import settings
    from django.db import connections

    from common.db import pools_close, pools_open

    seconds, repeats = opts.pick(0.5, 0.25), opts.pick(24, 1)
    report = Report(NAME, f"user lookup by id, {CONCURRENCY} concurrent, real MySQL, no HTTP")
    report.params = {
        "sql": SQL,
        "concurrency": CONCURRENCY,
        "seconds_per_turn": seconds,
        "repeats": repeats,
        "pool_maxsize": settings.AIOMYSQL_COMMON["maxsize"],
    }
    await pools_open()
    try:
        paths = _paths()
        uids = [row[0] for row in await _all_ids()]
        expected = await paths["raw aiomysql"](uids[0])
        for name, lookup in paths.items():  # the four paths read the same row
            if await lookup(uids[0]) != expected:
                raise AssertionError(f"{name} read {await lookup(uids[0])!r}, not {expected!r}")
        for lookup in paths.values():  # warm-up: pool filled, ORM connection open
            await _run_for(lookup, uids, seconds / 2)
        overhead_us = _wrapper_overhead_us()
        # cProfile sees this thread only: the ORM paths' work happens in asgiref's thread.
        calls = {name: await _calls_per_lookup(paths[name], uids) for name in AIOMYSQL_PATHS}
        counts = dict.fromkeys(paths, 0)
        cpu = dict.fromkeys(paths, 0.0)
        lats: dict[str, list[float]] = {name: [] for name in paths}
        turns: list[dict[str, int]] = []
        names = list(paths)
        for r in range(repeats):
            order = names[r % len(names) :] + names[: r % len(names)]
            if r % 4 == 0:
                progress(NAME, f"turn {r + 1}/{repeats}: {', '.join(order)}")
            turns.append({})
            for name in order:
                cpu0 = time.process_time()
                n, lat = await _run_for(paths[name], uids, seconds)
                cpu[name] += time.process_time() - cpu0
                counts[name] += n
                turns[-1][name] = n
                lats[name].extend(lat)
    finally:
        await pools_close()
        await sync_to_async(connections.close_all)()
    total_s = seconds * repeats
    rate = {name: counts[name] / total_s for name in paths}
    raw = rate["raw aiomysql"]
    table = report.table(
        f"lookups per second ({CONCURRENCY} concurrent, {repeats} x {seconds:g}s per path)",
        [
            "path",
            "lookups/s",
            "p50 ms",
            "p99 ms",
            "CPU us/lookup",
            "calls/lookup",
            "vs raw (totals)",
        ],
    )
    keys = {"raw aiomysql": "raw", "DBExecute": "dbexecute", "async ORM": "orm_async",
            "sync ORM + sync_to_async": "orm_sync"}  # fmt: skip
    for name, key in keys.items():
        p50, p99 = (percentile(lats[name], q) * 1000 for q in (50, 99))
        report.figures[f"{key}.lookups_per_s"] = rate[name]
        report.figures[f"{key}.p50_ms"] = p50
        report.figures[f"{key}.p99_ms"] = p99
        cpu_us = cpu[name] * 1e6 / max(1, counts[name])
        report.figures[f"{key}.cpu_us_per_lookup"] = cpu_us
        if name in calls:
            report.figures[f"{key}.calls_per_lookup"] = calls[name]
        call_cell = calls.get(name, "-")
        table.add(name, rate[name], p50, p99, cpu_us, call_cell, ratio(rate[name], raw))

    def paired(a: str, b: str) -> float:
        """Median over turns of a/b within the same turn: drift between turns cancels out."""
        return percentile([ratio(t[a], t[b]) for t in turns], 50)

    report.ratios["dbexecute_vs_raw"] = paired("DBExecute", "raw aiomysql")
    report.ratios["dbexecute_vs_orm_async"] = paired("DBExecute", "async ORM")
    report.ratios["orm_async_vs_raw"] = paired("async ORM", "raw aiomysql")
    report.ratios["orm_sync_vs_raw"] = paired("sync ORM + sync_to_async", "raw aiomysql")
    report.ratios["dbexecute_calls_vs_raw"] = ratio(calls["DBExecute"], calls["raw aiomysql"])
    report.ratios["dbexecute_cpu_vs_raw"] = ratio(
        report.figures["dbexecute.cpu_us_per_lookup"], report.figures["raw.cpu_us_per_lookup"]
    )
    report.figures["dbexecute_wrapper_overhead_us"] = overhead_us
    spread = [ratio(t["DBExecute"], t["raw aiomysql"]) for t in turns]
    report.figures["dbexecute_vs_raw_min_turn"] = min(spread)
    report.figures["dbexecute_vs_raw_max_turn"] = max(spread)
    report.target("dbexecute_vs_raw", ">=", 0.95)
    report.target("dbexecute_vs_orm_async", ">=", 2.0)
    report.notes.append(
        "ratios are medians over turns of the ratio within one turn; DBExecute/raw per turn "
        f"ranged {min(spread):.2f}..{max(spread):.2f}"
    )
    report.notes.append(
        f"DBExecute's own work per call (object, parameter check, pool lookup, no I/O): "
        f"{overhead_us:.1f} us, against {report.figures['raw.cpu_us_per_lookup']:.0f} us of "
        "CPU per raw lookup"
    )
    report.notes.append(
        "CPU us/lookup: this process's CPU (all threads) per lookup; MySQL's own CPU is apart. "
        "calls/lookup: Python calls per lookup (cProfile, one lookup at a time), noise-free. "
        "The ORM paths run in asgiref's one sync thread (thread-sensitive), on one connection; "
        "the aiomysql paths share the app's study pool"
    )
    return report


def _wrapper_overhead_us(n: int = 20_000) -> float:
    """What DBExecute adds before the driver runs: build the object, check the parameters,
    find the pool (called on the running loop, as a lookup would)."""
    from common.db import pool_get
    from common.dbexecute import DBExecute

    started = time.perf_counter()
    for uid in range(n):
        DBExecute(SQL, (uid,))
        pool_get("study")
    return (time.perf_counter() - started) * 1e6 / n


async def _calls_per_lookup(lookup: Lookup, uids: list[int], n: int = 200) -> float:
    """Python function calls (coroutine resumptions included) per lookup, one at a time: a
    count, so no noisy neighbour can move it."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for i in range(n):
        await lookup(uids[i % len(uids)])
    profile.disable()
    return pstats.Stats(profile).total_calls / n


async def _all_ids() -> list[tuple]:
    from common.dbexecute import DBExecute

    rows = await DBExecute("SELECT id FROM user ORDER BY id LIMIT 1000").fetchall()
    if not rows:
        raise RuntimeError("the study database has no users: run `make services` (seeds them)")
    return rows


@scenario(NAME, "user lookup: raw aiomysql vs DBExecute vs async ORM vs sync ORM")
def run(opts: Options) -> Report:
    return asyncio.run(_measure(opts))
