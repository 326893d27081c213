"""answer_game.fanout: which process writes which frame, and a stalled socket never holds up the
others. The sockets here are asyncio objects of the test's own (the writes are what is tested);
tests/live/test_game_live.py does the same against real sockets of the live server."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from answer_game import rules
from answer_game.fanout import conn_id, conn_proc, frames_route, frames_texts, texts_push

A, B = "specific.aaa!1", "specific.bbb!2"  # two processes' inboxes


def conn(proc: str, n: int) -> str:
    return conn_id(proc=proc, channel=f"{proc.split('!')[0]}!c{n}")


@dataclass(eq=False)
class Socket:
    """A sink that records what was written; `stall` makes its writes wait until released."""

    written: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    behind: int = 0
    stall: asyncio.Event | None = None

    async def send_text(self, text: str) -> None:
        if self.stall is not None and not self.stall.is_set():
            await self.stall.wait()
        self.written.append(text)

    async def backlog_put(self, text: str) -> None:
        self.queued.append(text)
        self.behind += 1


@dataclass
class Seat:
    user_id: int
    sink: Socket


def test_a_connection_id_names_the_process_that_holds_the_socket():
    assert conn_proc(conn(A, 1)) == A
    assert conn_proc(conn_id(proc=B, channel="specific.bbb!x")) == B


def test_a_frame_for_one_connection_goes_only_to_its_process_and_a_room_frame_to_every_process():
    ack = rules.AnswerAccepted(conn(B, 1), rules.AnswerRecord(7, 1, 2, True, 100, 990))
    progress = rules.ProgressChanged(question_id=7, answered=1, total=3)
    routes = frames_route([ack, progress, rules.StatusChanged("playing")],
                          conns=[conn(A, 1), conn(A, 2), conn(B, 1)])
    assert routes == {
        A: [("", progress.frame())],
        B: [(conn(B, 1), ack.frame()), ("", progress.frame())],
    }


def test_a_process_with_no_socket_in_the_room_gets_no_room_frames():
    progress = rules.ProgressChanged(question_id=7, answered=1, total=3)
    assert frames_route([progress], conns=[conn(A, 1)]) == {A: [("", progress.frame())]}
    assert frames_route([progress], conns=[]) == {}


def test_a_room_frame_is_encoded_once_and_a_reveal_is_projected_per_player():
    seats = {conn(A, n): Seat(n, Socket()) for n in (1, 2)}
    progress = rules.ProgressChanged(question_id=7, answered=1, total=3).frame()
    reveal = rules.Revealed(question_id=7, index=0, correct=2, points=((1, 990), (2, 0)),
                            scores=()).frame()
    texts = frames_texts([("", progress), ("", reveal)], seats)
    assert [sink for sink, _ in texts] == [seats[conn(A, 1)].sink, seats[conn(A, 2)].sink] * 2
    assert texts[0][1] is texts[1][1]  # one string for the whole room
    assert [json.loads(t)["points"] for _, t in texts[2:]] == [990, 0]
    assert all("points_all" not in json.loads(t) for _, t in texts[2:])


def test_a_frame_for_a_socket_that_left_this_process_is_dropped():
    seats = {conn(A, 1): Seat(1, Socket())}
    ack = {"type": "answer_ack", "question_id": 7}
    assert frames_texts([(conn(A, 9), ack)], seats) == []


async def test_a_stalled_socket_gets_its_frames_queued_in_order_and_the_others_are_not_held_up():
    fast1, slow, fast2 = Socket(), Socket(stall=asyncio.Event()), Socket()
    pairs = [(s, f"{n}") for n in range(3) for s in (fast1, slow, fast2)]
    started = time.monotonic()
    queued = await asyncio.wait_for(texts_push(pairs, stall=0.05), 2)  # no guard: it hangs
    took = time.monotonic() - started
    assert fast1.written == fast2.written == ["0", "1", "2"]
    assert slow.written == [] and slow.queued == ["0", "1", "2"] and queued == 3
    assert took < 0.5, f"one stall should cost one timeout (0.05 s), took {took:.2f} s"


async def test_a_socket_still_behind_keeps_its_order_through_the_queue():
    behind, fresh = Socket(behind=2), Socket()
    queued = await texts_push([(behind, "a"), (fresh, "a"), (behind, "b")])
    assert (behind.written, behind.queued, fresh.written, queued) == ([], ["a", "b"], ["a"], 2)


async def test_writes_that_do_not_wait_never_time_out_however_long_the_run():
    sinks = [Socket() for _ in range(200)]
    queued = await texts_push([(s, "x" * 1000) for s in sinks], stall=0.0)
    assert queued == 0 and all(s.written == ["x" * 1000] for s in sinks)
