"""Faults under the chat route: Redis restarted under open websockets."""

import asyncio
import json
import time

import pytest
from websockets.exceptions import InvalidStatus

from workbook.chapters.client import player_new, ws_open, ws_recv_json, ws_send_json

from .conftest import STOCK_LAYER_CLEANER

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.mark.parametrize("layer", ["redis", "inbox"])
async def test_open_websockets_keep_receiving_after_redis_restarts(stack, figures, server_logs,
                                                                 layer):
    """Tried: kill -9 Redis under two open chat sockets (channel layer `layer`), start it
    again (empty) a second later, send a message.
    Asserted: both sockets stay open (the stock layer's receive raising ConnectionError used to
    end every consumer); a new socket during the outage is refused with a 503 and a JSON
    `unavailable` body (not a 500, not accepted into a room it cannot hear); and the message
    reaches the other socket within a few seconds (Redis came back without the group
    memberships: the process puts them back)."""
    server_logs.allow.append(STOCK_LAYER_CLEANER)  # every stock-layer server sees the outage
    server = stack.server("a", layer=layer)
    a, b = player_new("fa", base=server.url), player_new("fb", base=server.url)
    async with await ws_open("/ws/chat/fault/", a["ticket"], base=server.url) as wa, \
            await ws_open("/ws/chat/fault/", b["ticket"], base=server.url) as wb:
        await ws_send_json(wa, {"message": "before"})
        assert (await ws_recv_json(wb))["message"] == "before"
        stack.redis.kill()
        down = time.monotonic()
        with pytest.raises(InvalidStatus) as refused:
            await ws_open("/ws/chat/fault/", a["ticket"], base=server.url)
        assert refused.value.response.status_code == 503
        assert json.loads(refused.value.response.body)["error"] == "unavailable"
        await asyncio.sleep(max(0.0, 1 - (time.monotonic() - down)))
        stack.redis.start()
        back = time.monotonic()
        received, tries = None, 0
        while received is None and time.monotonic() - back < 10:
            tries += 1  # a sender retries, as the `unavailable` error frame asks it to
            await ws_send_json(wa, {"message": "after"})
            try:
                while (frame := await ws_recv_json(wb, timeout=0.5))["type"] != "message":
                    pass
                received = frame["message"]
            except TimeoutError:
                continue
        took = time.monotonic() - back
    figures.report(f"redis restart under chat sockets ({layer} layer)", faults=1, rows_lost=0,
                   sends=tries, delivered_after_s=round(took, 2))
    assert received == "after"
    assert took < 5
    assert server.healthy()
