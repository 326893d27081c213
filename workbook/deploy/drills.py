"""Mid-game drills on the deployed stack, for its test and its chapter: a node drained, the Redis
master killed, each while bots play a game through nginx over wss.

A drill needs this process to talk to the stack as its users do: deploy.client_env(plan) in the
environment (the URL through nginx, the CA to trust, the stack's databases for reading rows back).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from workbook import deploy
from workbook.chapters.bots import Bot
from workbook.chapters.client import http, player_new
from workbook.deploy import Node, Plan
from workbook.paths import REPO_ROOT

WRITES_BACK_WITHIN = 30.0  # seconds after a Redis kill by which writes must work again


@dataclass
class DrillResult:
    """What a drill saw: the players, where they sat, what they were told, what MySQL holds."""

    players: int
    sockets_per_node: list[int]
    acked: set[tuple[int, int]] = field(default_factory=set)  # (question_id, user_id)
    stored: set[tuple[int, int]] = field(default_factory=set)
    leaderboards: int = 0  # distinct final leaderboards the players saw (1: they agree)
    moved: int = 0  # players whose socket dropped and who came back
    fault_s: float = 0.0  # the drain, or the time until the sentinels named a new master
    writes_again_s: float | None = None  # after a Redis kill: until a room could be made again
    game_s: float = 0.0
    # each node's health at the end of the game, the players still connected
    nodes_after: list[dict | None] = field(default_factory=list)

    @property
    def lost(self) -> set[tuple[int, int]]:
        """Answers a player was told were stored, that are not."""
        return self.acked - self.stored


def _right_answer(answers: dict[int, int]) -> Callable[[dict], int]:
    return lambda question: answers[question["question_id"]]


async def _play(plan: Plan, label: str, fault: Callable[[list[Bot]], Awaitable[None]],
                *, players: int = 6) -> DrillResult:
    """Seat `players` bots in a 3-question room through nginx, start, and let `fault` run once
    question 2 opens; every bot answers every question right."""
    bank = json.loads((REPO_ROOT / "data" / "questions.json").read_text(encoding="utf-8"))
    choose = _right_answer({q["id"]: q["answer"] for q in bank})
    base = plan.url
    people = [player_new(f"{label}-{n}", base=base) for n in range(players)]
    room_id = http("POST", "/api/rooms", {"questions": 3, "seconds": 6},
                   ticket=people[0]["ticket"], base=base).body["room_id"]
    bots = []
    for person in people:
        bot = await Bot.join(person, room_id, bases=[base])
        await bot.until("state")
        bots.append(bot)
    result = DrillResult(players, [deploy.node_health(plan, i)["game"]["sockets"]
                                   for i in range(len(plan.nodes))])
    await bots[0].send({"type": "start"})

    async def fault_at_question_2() -> None:
        while not any(f.get("type") == "question" and f.get("index") == 1
                      for b in bots for f in b.log):
            await asyncio.sleep(0.02)
        await fault(bots)

    began = time.monotonic()
    faulting = asyncio.create_task(fault_at_question_2())
    try:
        finished = await asyncio.gather(*(b.play(choose, timeout=60) for b in bots))
        await faulting
        result.nodes_after = [deploy.node_health(plan, i) for i in range(len(plan.nodes))]
    finally:
        faulting.cancel()
        await asyncio.gather(*(b.close() for b in bots), return_exceptions=True)
    result.game_s = time.monotonic() - began
    result.leaderboards = len({json.dumps(f["leaderboard"]) for f in finished})
    result.moved = sum(1 for b in bots if b.reconnects)
    result.acked = {(qid, b.user_id) for b in bots for qid in b.acked}
    result.stored = {(int(q), int(u)) for q, u in deploy.mysql_query(
        plan, "SELECT question_id, user_id FROM quiz_game.answer WHERE room_id = %s",
        (room_id,))}
    return result


async def node_drain_drill(plan: Plan) -> DrillResult:
    """Node 1 gets SIGTERM (as `systemctl stop` sends) once question 2 opens: its players are
    closed with 1012 and come back through nginx to node 2, which takes the room over. Node 1 is
    started again afterwards."""
    took: dict[str, float] = {}

    async def fault(_bots: list[Bot]) -> None:
        took["drain"] = await asyncio.to_thread(Node(plan, 0).stop) or 0.0

    try:
        result = await _play(plan, "drain", fault)
    finally:
        await asyncio.to_thread(Node(plan, 0).start)
    result.fault_s = took["drain"]
    return result


async def redis_kill_drill(plan: Plan) -> DrillResult:
    """The Redis master gets SIGKILL once question 2 opens; the drill waits for the sentinels to
    name the replica, then for a room to be made through nginx (a Redis write on some node).
    The killed server comes back as a replica afterwards."""
    times: dict[str, float] = {}
    host = player_new("redis-probe", base=plan.url)

    async def fault(_bots: list[Bot]) -> None:
        killed = time.monotonic()
        times["promoted"], _ = await asyncio.to_thread(deploy.redis_master_kill, plan)
        while time.monotonic() - killed < WRITES_BACK_WITHIN:
            reply = await asyncio.to_thread(http, "POST", "/api/rooms",
                                            {"questions": 1, "seconds": 5},
                                            ticket=host["ticket"], base=plan.url)
            if reply.status == 201:
                times["writes"] = time.monotonic() - killed
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no room could be made within {WRITES_BACK_WITHIN:.0f} s of the kill")

    try:
        result = await _play(plan, "failover", fault)
    finally:
        await asyncio.to_thread(deploy.redis_restore, plan)
    result.fault_s, result.writes_again_s = times["promoted"], times["writes"]
    return result
