"""common.layers.InboxChannelLayer against the real Redis: the whole Channels layer API, the
stock layer's storage (so both can share one Redis), and a reader that survives losing its socket.
"""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
import redis.asyncio as aioredis
from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer

from common.layers import InboxChannelLayer
from course_project.config import config_get

HOST = {"address": config_get().redis_url, "socket_timeout": None, "socket_connect_timeout": 5}


@pytest.fixture
def prefix():
    return f"test-layers-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def make(prefix):
    """Layers on a private key prefix; several of them act as several server processes."""
    made = []

    def _make(cls=InboxChannelLayer, **kw):
        # The client name lets a test find this layer's own Redis connections.
        layer = cls(hosts=[dict(HOST, client_name=prefix)], prefix=prefix, **kw)
        made.append(layer)
        return layer

    yield _make
    for layer in made:
        await layer.flush()


async def recv(layer, channel, timeout=3.0):
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def waiting_in_redis(layer, channel) -> int:
    """Messages stored in Redis for the inbox of `channel`."""
    r = aioredis.Redis.from_url(config_get().redis_url)
    try:
        return await r.zcard(layer.prefix + layer.non_local_name(channel))
    finally:
        await r.aclose()


def redis_uses(layer) -> list[int]:
    """The shard indexes `layer` asks a Redis connection for, from now on. The inbox reader
    took its connection before and sits in its blocking pop, so what lands here is the
    sending side's."""
    used: list[int] = []
    real = layer.connection
    layer.connection = lambda index: used.append(index) or real(index)
    return used


async def test_a_message_sent_to_a_channel_is_received_once_without_routing_keys(make):
    layer = make()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "hello", "n": 1})
    assert await recv(layer, channel) == {"type": "hello", "n": 1}
    with pytest.raises(TimeoutError):
        await recv(layer, channel, timeout=0.3)


async def test_messages_sent_before_the_first_receive_wait_in_order(make):
    layer = make()
    channel = await layer.new_channel()
    for n in range(5):
        await layer.send(channel, {"type": "m", "n": n})
    assert [(await recv(layer, channel))["n"] for _ in range(5)] == [0, 1, 2, 3, 4]


async def test_group_send_reaches_every_member_and_not_a_discarded_one(make):
    layer = make()
    a, b, gone = [await layer.new_channel() for _ in range(3)]
    for ch in (a, b, gone):
        await layer.group_add("room-1", ch)
    await layer.group_discard("room-1", gone)
    await layer.group_send("room-1", {"type": "chat.message", "text": "hi"})
    assert await recv(layer, a) == await recv(layer, b) == {"type": "chat.message", "text": "hi"}
    with pytest.raises(TimeoutError):
        await recv(layer, gone, timeout=0.3)


async def test_a_group_message_is_stored_once_per_process_and_reaches_both_processes(make):
    one, two = make(), make()
    locals_one = [await one.new_channel() for _ in range(3)]
    remote = await two.new_channel()
    for ch in (*locals_one, remote):
        await one.group_add("room-2", ch)
    await two.group_send("room-2", {"type": "x"})
    assert await waiting_in_redis(one, locals_one[0]) == 1
    got = [await recv(one, ch) for ch in locals_one] + [await recv(two, remote)]
    assert got == [{"type": "x"}] * 4


async def test_one_round_trip_pops_a_batch_of_messages(make):
    layer = make(batch=8)
    channel = await layer.new_channel()
    for n in range(10):
        await layer.send(channel, {"type": "m", "n": n})
    key = layer.prefix + layer.non_local_name(channel)
    assert len(await layer._pop(0, key)) == 8
    assert len(await layer._pop(0, key)) == 2


async def test_send_raises_channel_full_at_capacity(make):
    layer = make(capacity=2)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "m"})
    await layer.send(channel, {"type": "m"})
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "m"})


async def _reading(layer, channel) -> asyncio.Task:
    """A waiting receive() on `channel`, once the layer's inbox reader runs."""
    waiting = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0.2)
    return waiting


async def test_a_message_for_a_channel_of_this_process_skips_redis_and_is_a_copy(make):
    layer = make()
    channel = await layer.new_channel()
    waiting = await _reading(layer, await layer.new_channel())
    used = redis_uses(layer)
    frame = {"type": "hello", "items": [1, 2]}
    await layer.send(channel, frame)
    frame["items"].append(3)  # the sender goes on using its dict
    assert used == []
    assert await recv(layer, channel) == {"type": "hello", "items": [1, 2]}
    waiting.cancel()


async def test_a_local_send_raises_channel_full_at_capacity_and_refuses_what_msgpack_cannot_pack(
    make,
):
    layer = make(capacity=2)
    channel = await layer.new_channel()
    waiting = await _reading(layer, await layer.new_channel())
    used = redis_uses(layer)
    await layer.send(channel, {"type": "m"})
    await layer.send(channel, {"type": "m"})
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "m"})
    with pytest.raises(TypeError):
        await layer.send(await layer.new_channel(), {"type": "m", "bad": object()})
    assert used == []
    waiting.cancel()


async def test_a_group_send_reaches_local_members_directly_and_remote_ones_through_redis(make):
    here, there = make(), make()
    mine = [await here.new_channel() for _ in range(3)]
    theirs = await there.new_channel()
    waiting = await _reading(here, mine[0])
    for ch in (*mine, theirs):
        await here.group_add("room-3", ch)
    used = redis_uses(here)
    await here.group_send("room-3", {"type": "x"})
    assert len(used) == 2  # the members, then one write: the other process's inbox
    assert await waiting_in_redis(there, theirs) == 1
    assert await asyncio.wait_for(waiting, 3) == {"type": "x"}
    got = [await recv(here, ch) for ch in mine[1:]] + [await recv(there, theirs)]
    assert got == [{"type": "x"}] * 3


async def test_the_stock_layer_and_this_one_talk_through_the_same_keys(make):
    stock, inbox = make(RedisChannelLayer), make()
    mine, theirs = await inbox.new_channel(), await stock.new_channel()
    await stock.group_add("mixed", mine)
    await stock.group_add("mixed", theirs)
    await stock.group_send("mixed", {"type": "from.stock"})
    await inbox.group_send("mixed", {"type": "from.inbox"})
    assert [(await recv(inbox, mine))["type"] for _ in range(2)] == ["from.stock", "from.inbox"]
    assert [(await recv(stock, theirs))["type"] for _ in range(2)] == ["from.stock", "from.inbox"]


async def test_a_normal_channel_still_works_the_stock_way(make):
    layer = make()
    await layer.send("worker.tasks", {"type": "job", "id": 7})
    assert await recv(layer, "worker.tasks") == {"type": "job", "id": 7}


async def test_a_cancelled_receive_loses_no_message(make):
    layer = make()
    channel = await layer.new_channel()
    waiting = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0.1)
    waiting.cancel()
    await layer.send(channel, {"type": "after-cancel"})
    assert await recv(layer, channel) == {"type": "after-cancel"}


async def test_a_receive_idle_longer_than_the_blocking_pop_still_gets_its_message(make):
    layer, other_process = make(), make()
    layer.brpop_timeout = 1  # the reader's BZMPOP times out and comes back twice
    channel = await layer.new_channel()
    waiting = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(2.5)
    await other_process.send(channel, {"type": "late"})  # through Redis and the reader
    assert await asyncio.wait_for(waiting, 3) == {"type": "late"}


async def test_the_reader_survives_redis_killing_its_connection(make, prefix):
    layer, other_process = make(), make()
    channel = await layer.new_channel()
    waiting = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0.3)
    r = aioredis.Redis.from_url(config_get().redis_url)
    try:
        mine = [c for c in await r.client_list() if c["name"] == prefix and c["cmd"] == "bzmpop"]
        killed = sum([await r.client_kill_filter(_id=c["id"]) for c in mine])
    finally:
        await r.aclose()
    assert killed >= 1
    await other_process.send(channel, {"type": "after-kill"})
    assert await asyncio.wait_for(waiting, 5) == {"type": "after-kill"}


async def test_queues_of_channels_nobody_reads_are_dropped_after_expiry(make):
    layer = make(expiry=1)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "never-read"})
    reader = await layer.new_channel()
    waiting = asyncio.create_task(layer.receive(reader))  # starts the inbox reader
    await asyncio.sleep(0.3)
    assert channel in layer._inboxes
    await asyncio.sleep(1.2)
    await layer.send(reader, {"type": "tick"})  # the reader cleans up after each batch
    assert await asyncio.wait_for(waiting, 3) == {"type": "tick"}
    assert channel not in layer._inboxes and reader in layer._inboxes


async def test_flush_deletes_the_keys_and_the_layer_still_works_afterwards(make, prefix):
    layer = make()
    channel = await layer.new_channel()
    await layer.group_add("room-3", channel)
    await layer.send(channel, {"type": "m"})
    await layer.flush()
    r = aioredis.Redis.from_url(config_get().redis_url)
    try:
        assert await r.keys(prefix + "*") == []
    finally:
        await r.aclose()
    await layer.send(channel, {"type": "again"})
    assert await recv(layer, channel) == {"type": "again"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.faults
async def test_a_waiting_receive_gets_its_message_after_redis_is_killed_and_restarted(
    tmp_path, prefix
):
    """A private Redis, killed with -9 under a waiting receive(), then started again (empty)."""
    from workbook.setup.localservers import LocalRedis

    private = LocalRedis(tmp_path / "redis", _free_port())
    private.start()
    address = f"redis://{private.host}:{private.port}/0"
    hosts = [{"address": address, "socket_timeout": None, "socket_connect_timeout": 2}]
    layer = InboxChannelLayer(hosts=hosts, prefix=prefix)
    other_process = InboxChannelLayer(hosts=hosts, prefix=prefix)  # sends through Redis
    try:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "before"})
        assert await recv(layer, channel) == {"type": "before"}
        waiting = asyncio.create_task(layer.receive(channel))
        await asyncio.sleep(0.3)
        private.kill()
        await asyncio.sleep(1.0)
        private.start()
        for _ in range(40):  # the sender's pooled connection died too: retry as a client would
            try:
                await other_process.send(channel, {"type": "after"})
                break
            except (ConnectionError, OSError, aioredis.RedisError):
                await asyncio.sleep(0.25)
        assert await asyncio.wait_for(waiting, 15) == {"type": "after"}
    finally:
        await layer.flush()
        await other_process.close_pools()
        private.stop()
