"""Connections that stay quiet for a minute (checked in the background, see longwaits.py)."""

import asyncio

import pytest

from .longwaits import IDLE_QUESTION_SECONDS, dumps

pytestmark = [pytest.mark.live, pytest.mark.slow]


async def test_an_idle_player_gets_the_next_question_and_a_silent_client_is_released(
        long_waits, figures):
    """Tried: (idle) a player answers at once, then its connection carries nothing either way
    for the 65 s a slower player keeps the question open; (silent) a client stops reading
    without closing (no pongs, TCP still up), in a lobby.
    Asserted: the idle player got the reveal after a gap of at least 60 s, then the next
    question, and its answer to that was acknowledged; the silent client was released by the
    server's keepalive within 20-45 s, keeping its seat, and could come back as that player."""
    assert long_waits is not None, "started by conftest.long_waits when this file is collected"
    outcome = await asyncio.to_thread(long_waits.result)
    idle, silent = outcome["idle"], outcome["silent"]
    figures.report("idle and silent connections", faults=1, rows_lost=0,
                   idle_gap_s=idle.get("gap_s") if isinstance(idle, dict) else idle,
                   silent_released_after_s=silent.get("released_after_s")
                   if isinstance(silent, dict) else silent, waited_s=outcome.get("waited_s"))
    assert isinstance(idle, dict) and isinstance(silent, dict), dumps(outcome)
    assert idle["gap_s"] >= 60 and idle["gap_s"] <= IDLE_QUESTION_SECONDS + 5, idle
    assert idle["first_after_gap"] == "reveal" and idle["next_question_index"] == 1, idle
    assert idle["acked_after_idle"], idle
    assert 15 <= silent["released_after_s"] <= 45, silent
    assert silent["seat_kept"] and silent["back_as_player"], silent
