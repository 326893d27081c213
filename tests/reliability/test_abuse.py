"""One client floods; the others must not notice."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time

import pytest

from course_project.config import config_get
from workbook.chapters.client import player_new, ws_open
from workbook.paths import REPO_ROOT

from .support import room_new

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.usefixtures("live_server")]

FLOOD_SECONDS = 5.0
PROBES = 40  # round trips per probe and phase, 10 a second: well under the rate limit


async def round_trips(ws, frame: str, is_reply, count: int = PROBES) -> list[float]:
    """Milliseconds from sending `frame` to its reply, `count` times, 10 a second."""
    out = []
    for _ in range(count):
        began = time.monotonic()
        await ws.send(frame)
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if is_reply(reply):
                break
        out.append((time.monotonic() - began) * 1000)
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - began)))
    return out


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def admitted(outcome: dict) -> int:
    """Frames the server let through: a game reply (an error other than rate_limited, here),
    or a chat echo of the flooder's message."""
    return outcome["echoes"] + len([e for e in outcome["errors"] if e != "rate_limited"])


def flooder(path: str, ticket: str, frame: str) -> subprocess.Popen:
    cfg = config_get()
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.flooder", cfg.ws_url + path, ticket,
         str(FLOOD_SECONDS), frame, cfg.server_url],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)


async def test_a_flooding_connection_is_rate_limited_and_does_not_slow_the_others(figures):
    """Tried: two clients (one in a game room, one in a chat room), each in its own process,
    send valid frames as fast as they can for 5 s, reconnecting whenever they are thrown out,
    while a probe player in the same game room and one in the same chat room measure their
    round trips (a driver-judged error, a chat echo) 10 times a second; the same probes
    measured before the flood are the baseline.
    Asserted: each flooding connection got `rate_limited` errors (at most one a second), had no
    more frames admitted than its token bucket allows (40, then 20 a second of open time), and
    stayed open; the probes' p95 round trip stayed within 3x the baseline plus 250 ms, none took
    over a second. The figures go to .run/reliability-results.json (README, "Reliability")."""
    base = config_get().server_url
    host, probe, bully, chat_probe, chat_bully = (player_new(f"ab-{n}") for n in (
        "host", "probe", "bully", "cprobe", "cbully"))
    room_id = room_new(host, base, questions=1, seconds=30)
    seat = f"/ws/game/controller/{room_id}/"
    chat = f"/ws/chat/abuse-{room_id}/"
    hws = await ws_open(seat + str(host["user_id"]), host["ticket"], close_timeout=2)
    pws = await ws_open(seat + str(probe["user_id"]), probe["ticket"], close_timeout=2)
    cws = await ws_open(chat, chat_probe["ticket"], close_timeout=2)
    bully_ws = await ws_open(seat + str(bully["user_id"]), bully["ticket"], close_timeout=2)
    await bully_ws.close()  # seated; the flooder reconnects to this seat from its process
    game_probe = json.dumps({"type": "answer", "question_id": 1, "choice": 0})  # wrong_phase

    def game_reply(f: dict) -> bool:
        return f.get("type") == "error"

    def chat_reply(f: dict) -> bool:
        return f.get("user_id") == chat_probe["user_id"]

    async def probes() -> tuple[list[float], list[float]]:
        return await asyncio.gather(
            round_trips(pws, game_probe, game_reply),
            round_trips(cws, json.dumps({"message": "probe"}), chat_reply))

    quiet_game, quiet_chat = await probes()
    floods = [flooder(seat + str(bully["user_id"]), bully["ticket"],
                      json.dumps({"type": "answer", "question_id": 1, "choice": 0})),
              flooder(chat, chat_bully["ticket"], json.dumps({"message": "spam"}))]
    await asyncio.sleep(0.5)
    loud_game, loud_chat = await probes()
    outcomes = [json.loads(p.communicate(timeout=30)[0]) for p in floods]
    for ws in (hws, pws, cws):
        await ws.close()

    def within(quiet: list[float], loud: list[float]) -> bool:
        return p95(loud) <= 3 * p95(quiet) + 250 and max(loud) < 1000

    figures.report(
        "flood from one connection", flood_frames=sum(o["sent"] for o in outcomes),
        connections=[o["connections"] for o in outcomes],
        refusals=sum(len(o["errors"]) for o in outcomes),
        rate_limited=[o["errors"].count("rate_limited") for o in outcomes],
        admitted=[admitted(o) for o in outcomes],
        open_s=[o["open_seconds"] for o in outcomes],
        game_probe_p95_ms=[round(p95(quiet_game)), round(p95(loud_game))],
        chat_probe_p95_ms=[round(p95(quiet_chat)), round(p95(loud_chat))],
        max_ms=round(max(loud_game + loud_chat)))
    for outcome in outcomes:
        # Each connection's bucket holds 40 and refills 20 a second, so what came back while the
        # connections were open is bounded by their open time (plus a second for the two clocks).
        # The count of rate_limited errors is no measure of time: one is sent only when a frame
        # is dropped, and a loaded server that reads slowly drops few.
        allowed = 40 * outcome["connections"] + 20 * (outcome["open_seconds"] + 1)
        assert "rate_limited" in outcome["errors"], outcome
        assert admitted(outcome) <= allowed, outcome
        assert outcome["closed"] == [None], outcome  # still open
    assert within(quiet_game, loud_game), (quiet_game, loud_game)
    assert within(quiet_chat, loud_chat), (quiet_chat, loud_chat)
