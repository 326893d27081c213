"""common.resilience.Memberships against a fake layer: when it adds the memberships again and
runs the `restored` hooks (the game's re-sync)."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from common import resilience


class FakeRedis:
    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.down = False

    async def expire(self, key: str, seconds: int) -> bool:
        if self.down:
            raise RedisConnectionError("Error 111 connecting")
        return key in self.keys

    async def set(self, key: str, value: str, ex: int) -> None:
        self.keys.add(key)


class FakeLayer:
    prefix = "asgi"
    ring_size = 1
    group_expiry = 86400

    def __init__(self) -> None:
        self.redis = FakeRedis()
        self.added: list[tuple[str, str]] = []

    def connection(self, index: int) -> FakeRedis:
        return self.redis

    async def group_add(self, group: str, channel: str) -> None:
        self.added.append((group, channel))


class Member:
    channel_name = "specific.x!y"
    groups_joined = {"room-1"}


@pytest.fixture
def layer(monkeypatch) -> FakeLayer:
    made = FakeLayer()
    monkeypatch.setattr(resilience, "get_channel_layer", lambda: made)
    return made


async def test_an_outage_makes_the_next_good_check_add_again_and_run_the_hooks(layer):
    """A failover keeps the marker (the replica has it), so only the failed check tells."""
    kept, calls = Member(), []
    memberships = resilience.Memberships()
    memberships.consumers.add(kept)

    async def hook() -> None:
        calls.append("restored")

    memberships.restored.append(hook)
    assert await memberships.check() is False  # first check: marker written, nothing lost
    layer.added.clear()
    layer.redis.down = True
    with pytest.raises(RedisConnectionError):
        await memberships.check()
    layer.redis.down = False
    assert await memberships.check() is True
    assert layer.added == [("room-1", kept.channel_name)] and calls == ["restored"]
    assert await memberships.check() is False  # restored once, not at every check


async def test_a_lost_marker_restores_and_a_failing_hook_is_tried_again(layer):
    kept, calls = Member(), []
    memberships = resilience.Memberships()
    memberships.consumers.add(kept)

    async def hook() -> None:
        calls.append("try")
        if len(calls) == 1:
            raise RedisConnectionError("Redis went away again")

    memberships.restored.append(hook)
    await memberships.check()
    layer.redis.keys.clear()  # Redis restarted empty
    with pytest.raises(RedisConnectionError):
        await memberships.check()
    assert memberships.lost == "restarted empty"
    assert await memberships.check() is True and calls == ["try", "try"]
