"""Redis that survives its master: a private master, its replica and three Redis Sentinels (quorum
2), two uvicorn processes that find the master through the sentinels (QUIZ_REDIS_SENTINELS), and
a game whose master is killed (-9) mid-question. The stack's private MariaDB stores the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from workbook.chapters.client import http
from workbook.setup.localservers import LocalRedis, LocalSentinel

from .conftest import STOCK_LAYER_CLEANER, free_port
from .support import (
    Ledger,
    check_stored,
    close_all,
    first_after,
    players_new,
    right,
    room_new,
    rows_of,
    seated,
    stamp_frames,
    to_question_2,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]

MASTER = "quiz"
# Nothing listens on port 9 (discard): a server that used the URL's host instead of the
# sentinels would fail. The URL still gives the database number.
UNUSED_URL = "redis://127.0.0.1:9/0"


@dataclass
class Replicated:
    """A master, its replica and the sentinels that watch them."""

    master: LocalRedis
    replica: LocalRedis
    sentinels: list[LocalSentinel]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(s.host, s.port) for s in self.sentinels]

    @property
    def env(self) -> dict[str, str]:
        return {"QUIZ_REDIS_SENTINELS": ",".join(f"{h}:{p}" for h, p in self.addresses),
                "QUIZ_REDIS_MASTER": MASTER, "QUIZ_REDIS_URL": UNUSED_URL}


async def sentinels_agree(group: Replicated, timeout: float = 15.0) -> None:
    """Wait until every sentinel knows the replica and the other sentinels (a failover needs a
    majority of them to vote), and the replica is in sync with the master."""
    deadline = time.monotonic() + timeout
    expect = len(group.sentinels) - 1
    states: list = []
    while time.monotonic() < deadline:
        states = []
        for host, port in group.addresses:
            async with aioredis.Redis(host=host, port=port, decode_responses=True) as client:
                states.append(await client.sentinel_master(MASTER))
        if all(s["num-other-sentinels"] == expect and s["num-slaves"] == 1 for s in states):
            async with aioredis.Redis(host=group.replica.host, port=group.replica.port,
                                      decode_responses=True) as replica:
                if (await replica.info("replication"))["master_link_status"] == "up":
                    return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the sentinels did not agree within {timeout} s: {states}")


@pytest.fixture
async def replicated(tmp_path_factory):
    """A fresh master, replica and three sentinels for each test (a failover uses them up)."""
    root = tmp_path_factory.mktemp("sentinel")
    master = LocalRedis(root / "master", free_port())
    replica = LocalRedis(root / "replica", free_port(), replicaof=(master.host, master.port))
    sentinels = [LocalSentinel(root / f"sentinel-{n}", free_port(), (master.host, master.port),
                               name=MASTER, quorum=2) for n in range(3)]
    made = Replicated(master, replica, sentinels)
    try:
        for server in (master, replica, *sentinels):
            server.start()
        await sentinels_agree(made)
        yield made
    finally:
        for server in (*sentinels, replica, master):
            try:
                server.stop()
            except Exception as exc:  # noqa: BLE001 - reported, then the next one
                print(f"[reliability] sentinel teardown: {exc!r}")


@pytest.fixture(params=["inbox", "redis"])
def failover_servers(request, stack, replicated):
    """Two uvicorn processes (channel layer: the project's InboxChannelLayer, then the stock
    RedisChannelLayer) on the stack's MariaDB that reach Redis through the sentinels; stopped
    after their test (the stack keeps them, so that the log check still reads their logs)."""
    servers = stack.servers_up(["sentinel-a", "sentinel-b"], layer=request.param,
                               env=replicated.env)
    yield servers
    for server in servers:
        server.stop(quiet=True)


async def switch_seen(address: tuple[str, int], ready: asyncio.Barrier) -> tuple[float, str]:
    """When (monotonic) this sentinel announces `+switch-master`, and what it said (`ready` is
    passed once it listens)."""
    async with aioredis.Redis(host=address[0], port=address[1], decode_responses=True) as client:
        async with client.pubsub() as pubsub:
            await pubsub.subscribe("+switch-master")
            await ready.wait()
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    return time.monotonic(), message["data"]


async def switch_first(addresses: list[tuple[str, int]],
                       ready: asyncio.Barrier) -> tuple[float, str]:
    """The first sentinel's `+switch-master` (the leader's, which the others learn from it): the
    sentinels' own view of the promotion."""
    tasks = [asyncio.create_task(switch_seen(a, ready)) for a in addresses]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return min(t.result() for t in done)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def first_write(sentinels: list[tuple[str, int]], every: float = 0.05) -> float:
    """When (monotonic) a client that finds the master through the sentinels first writes
    again: what any client of the failed-over Redis sees at best."""
    sentinel = Sentinel(sentinels, sentinel_kwargs={"socket_timeout": 0.5})
    client = sentinel.master_for(MASTER, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        while True:
            with contextlib.suppress(Exception):  # refused, no master yet: the outage itself
                await client.set("quiz-failover-probe", "1", px=10_000)
                return time.monotonic()
            await asyncio.sleep(every)
    finally:
        await client.aclose()
        await sentinel.aclose()


async def test_killing_the_redis_master_mid_game_promotes_the_replica_and_loses_no_answer(
        stack, figures, server_logs, replicated, failover_servers):
    """Tried: 4 players, two on each of two uvicorn processes that reach Redis through three
    sentinels; question 1 answered by all; in question 2 two players answered, then the master
    is killed (-9) and the other two (one per process) answer into the failover.
    Asserted: the sentinels promote the replica and both processes use it; every player got a
    `state` frame after the failover (each process re-synced its rooms); no websocket was
    dropped; the game finished; every acknowledged answer is one stored row with its choice (0
    lost) and the scores are the stored sums. Measured: kill to promotion (the sentinels'
    +switch-master), kill to the first write through the sentinels, kill to the first ack on the
    process that does not drive the room (the game's recovery)."""
    server_logs.allow.append(STOCK_LAYER_CLEANER)  # the stock layer's servers see the outage
    a, b = (s.url for s in failover_servers)
    layer = failover_servers[0].extra_env["QUIZ_CHANNEL_LAYER"]
    players = players_new(f"failover-{layer}", 4, a)
    # Question 2 must stay open through the failover (a few seconds); each question closes as
    # soon as everyone answered, so the long deadline costs no time.
    room_id = room_new(players[0], a, questions=3, seconds=25)
    bots = await seated(players, room_id, [[a, b], [b, a], [a, b], [b, a]])
    stamps = stamp_frames(bots)
    q2 = (await to_question_2(bots, timeout=8)).question

    ready = asyncio.Barrier(len(replicated.addresses) + 1)  # every sentinel listened to
    switch = asyncio.create_task(switch_first(replicated.addresses, ready))
    await asyncio.wait_for(ready.wait(), 5)
    killed = time.monotonic()
    replicated.master.kill()
    probe = asyncio.create_task(first_write(replicated.addresses))
    await asyncio.sleep(0.3)
    for bot in bots[2:]:  # one on each process, into the failover
        await bot.answer(q2["question_id"], right(q2))
    finished = await asyncio.gather(*(bot.play(right, timeout=40) for bot in bots))
    done = time.monotonic()
    promoted_at, announced = await asyncio.wait_for(switch, 10)
    written_at = await asyncio.wait_for(probe, 10)
    acked_b = first_after(bots[3:], killed, stamps, "answer_ack")
    acked_a = first_after(bots[2:3], killed, stamps, "answer_ack")
    resynced = [first_after([bot], killed, stamps, "state") for bot in bots]
    health = [http("GET", "/api/health", base=base).body for base in (a, b)]

    rows = rows_of(stack.query, room_id)
    ledger = Ledger()
    for bot in bots:
        ledger.add_bot(bot)
    await close_all(bots)
    figures.report(
        f"redis master killed mid-game, sentinel failover ({layer} layer)", faults=1,
        promoted_after_s=round(promoted_at - killed, 2),
        first_write_after_s=round(written_at - killed, 2),
        first_ack_after_s=round(acked_b - killed, 2) if acked_b else None,
        driver_side_ack_after_s=round(acked_a - killed, 2) if acked_a else None,
        resynced_after_s=round(max(resynced) - killed, 2) if all(resynced) else None,
        finished_after_s=round(done - killed, 1),
        reconnects=sum(bot.reconnects for bot in bots), retries=sum(bot.retries for bot in bots),
        acks=len(ledger.acks), rows=len(rows), rows_lost=len(ledger.lost(rows)))

    new_master = announced.split()
    assert new_master[0] == MASTER and int(new_master[-1]) == replicated.replica.port, announced
    async with aioredis.Redis(host=replicated.replica.host, port=replicated.replica.port,
                              decode_responses=True) as promoted:
        assert (await promoted.role())[0] == "master"
    replica_at = f"{replicated.replica.host}:{replicated.replica.port}"
    assert [h["channel_layer"]["sentinel_master"] for h in health] == [replica_at] * 2, health
    assert [h["status"] for h in health] == ["ok", "ok"], health
    # Memberships saw the outage: every process re-synced its members (a `state` each).
    assert all(resynced), f"no state frame after the failover: {resynced}"
    check_stored(stack, room_id, bots, finished[0])
    assert len({str(f["leaderboard"]) for f in finished}) == 1
    assert [bot.reconnects for bot in bots] == [0, 0, 0, 0]
    assert acked_b is not None and acked_b - promoted_at < 5.0, "the game did not recover"
    assert len(rows) == 12
