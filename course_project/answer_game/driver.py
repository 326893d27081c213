"""Who drives a room's clock, and what happens when that process dies.

One process drives each room: the one holding the Redis lease `quiz:room:<id>:driver` (SET NX PX
3000; the value is that process's private inbox channel; renewed every second by a compare-and-set
Lua script, released on shutdown). Only the driver changes the room: consumers on every process
hand their players' commands (join, leave, sync, start, answer, next; the rematch view its
rematch) to the room's driver, directly on its own process, else to the inbox named in the lease.
The driver applies them to the pure state machine (`rules`) with ITS time.monotonic(), inserts
accepted answers into MySQL (the UNIQUE key makes a replay `duplicate_answer`, never a second row),
saves a JSON snapshot to Redis when more than the answers changed (the open question as "seconds
remaining"; the answers are MySQL's rows), then sends the step's frames: it writes them to the
sockets of its own process itself and sends one message per other process that holds sockets of
the room, whose hub writes them out (fanout.py). Its timer task closes each question at the
deadline and opens the next one after the reveal pause.

If the driver's process dies, its lease and heartbeat key expire within 3 s. Every process checks,
once a second, the rooms it has local consumers for. A lease gone from a room that was handed
back is taken at once; one whose last driver still owns the snapshot is taken (by the first to
try) only after ORPHAN_WAIT, so that a living driver can take it back first. The new driver
rebuilds the room from the snapshot (deadline = now + remaining - the snapshot's age, measured on
Redis' clock) plus the answer rows in MySQL, and carries on. Each process then re-sends the joins of
its consumers (a `Sync`) to the new driver, so every player gets a `state` frame; connections of
processes whose heartbeat expired are dropped. Commands sent to the dead inbox meanwhile are lost:
a client whose `state` shows the question open and unanswered answers again.

If Redis restarts empty or fails over (Redis Sentinel), the driver keeps the room in memory: it
takes its vanished lease back and, once common.resilience.Memberships has seen the outage, saves
the snapshot again, and every process re-syncs its members, so each gets a `state` frame and
re-sends what was lost. Any command that could not be delivered does the same for its room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

from channels.layers import get_channel_layer

from common.dbexecute import DB_OUTAGE_ERRORS
from common.resilience import OUTAGE_ERRORS, memberships, outage_warn

from . import rules, services, store
from .fanout import Routed, Sink, conn_proc, frames_route, frames_texts, texts_push
from .rules import Command, Game
from .selectors import answers_list, room_get, room_questions_get

log = logging.getLogger(__name__)

WATCH_EVERY = 1.0
# A room whose lease vanished is taken over after this long (its driver, if alive, takes it
# back within one watch round: it renews every WATCH_EVERY).
ORPHAN_WAIT = 2 * WATCH_EVERY
IDLE_RELEASE = 30.0  # a driven room nobody is connected to is handed back after this long
MAX_HOPS = 2
COMMANDS_QUEUED = 1000  # commands read from the inbox, waiting for their room's driver
# How long after sending a successful take or renewal the lease (3 s) is trusted without asking
# Redis: commands for a room driven here skip the lease lookup meanwhile. Renewals come every
# WATCH_EVERY, and nobody else can take the lease before it expires plus ORPHAN_WAIT.
LEASE_TRUST = store.LEASE_MS / 1000 - 1.5

COMMANDS: dict[str, type] = {cls.__name__.lower(): cls for cls in
                             (rules.Join, rules.Leave, rules.Sync, rules.Start, rules.Next,
                              rules.Answer, rules.Rematch)}


def command_encode(cmd: Command) -> dict:
    """A command as a channel-layer message. The fields travel as JSON text: an answer carries
    whatever the client sent (an integer of 400 digits, NaN), which msgpack cannot pack."""
    return {"kind": type(cmd).__name__.lower(), "fields": json.dumps(asdict(cmd))}


def command_decode(data: dict) -> Command:
    cls = COMMANDS[data["kind"]]
    fields = json.loads(data["fields"])
    if cls is rules.Sync:
        fields["members"] = tuple(rules.Join(**m) for m in fields["members"])
    return cls(**fields)


def log_failure(what: str, exc: BaseException) -> None:
    """Redis or MySQL away is expected weather: one warning line. Anything else: a traceback."""
    if isinstance(exc, OUTAGE_ERRORS + DB_OUTAGE_ERRORS):
        outage_warn(what, exc, logger=log)
    else:
        log.error("%s", what, exc_info=exc)


class RoomGone(LookupError):
    pass


class RoomOrphaned(LookupError):
    """The room's lease vanished and its driver may take it back: not now."""


@dataclass
class Member:
    """A local websocket of a room."""

    conn: str
    user_id: int
    nickname: str
    watch: bool
    sink: Sink = field(compare=False, repr=False)  # the socket its frames are written to

    def join(self) -> rules.Join:
        return rules.Join(self.user_id, self.nickname, self.conn, self.watch)


def _conns(game: Game) -> list[str]:
    return [*game.watchers, *(c for p in game.players.values() for c in p.conns)]


# How a driver hands a process its frames: (room_id, process, frames) -> None.
Post = Callable[[str, str, list[Routed]], Awaitable[None]]


class RoomDriver:
    """The one place a room's state changes, on the process holding its lease."""

    def __init__(self, room_id: str, game: Game, *, owner: str, post: Post) -> None:
        self.room_id, self.game, self.owner, self.post = room_id, game, owner, post
        self.lock = asyncio.Lock()
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.idle_since: float | None = None
        self.saved: tuple | None = None  # what the last snapshot held (see snapshot_save)
        self.held_until = 0.0  # monotonic time until which the lease is ours (LEASE_TRUST)

    def start(self) -> None:
        self.task = asyncio.create_task(self._timer(), name=f"quiz-room-{self.room_id}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _timer(self) -> None:
        while True:
            try:
                at = rules.wake_at(self.game)
                self.wake.clear()
                timeout = None if at is None else max(0.0, at - time.monotonic())
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout)
                except TimeoutError:
                    await self.step(None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure(f"room {self.room_id}: timer step failed; retrying in 1 s", exc)
                await asyncio.sleep(1.0)

    async def step(self, command: Command | None) -> None:
        """Apply a command (None: the clock) atomically: persist, snapshot, then send."""
        async with self.lock:
            now = time.monotonic()
            if command is None:
                game, events = rules.tick(self.game, now=now)
            else:
                game, events = rules.apply(self.game, command, now=now)
            changed = game != self.game  # a refused command changes nothing, not even Redis
            if not events and not changed:
                return
            try:
                refused = await self._persist(events)
            except Exception as exc:
                conn = getattr(command, "conn", None)
                if command is None or not conn:
                    raise  # the timer logs it and retries
                log_failure(f"room {self.room_id}: {type(command).__name__} not stored", exc)
                await self._send([rules.Rejected(conn, "unavailable",
                                                 "the game could not store that; try again")])
                return
            if refused is not None:
                await self._duplicate(refused)
                return
            if changed:
                self.game = game
                self.wake.set()
                try:
                    await self.snapshot_save(now, unless_same=True)
                except Exception as exc:
                    log_failure(f"room {self.room_id}: snapshot not saved", exc)
            await self._send(events)

    async def snapshot_save(self, now: float, *, unless_same: bool = False) -> None:
        """Save the room to Redis. With `unless_same`, skip it when the snapshot would hold what
        the last one did: an answer that does not close the question changes only the answers,
        which MySQL holds (see rules.game_to_json), so most answers cost no Redis write."""
        held = rules.snapshot_changes(self.game)
        if unless_same and held == self.saved:
            return
        data = rules.game_to_json(self.game, now=now)
        if not await store.snapshot_save(room_id=self.room_id, data=data, owner=self.owner):
            log.warning("room %s: lease lost, snapshot not saved", self.room_id)
            return
        self.saved = held

    async def _persist(self, events: list) -> rules.AnswerAccepted | None:
        """Store what the events say; the accepted answer the database refused, if any."""
        for ev in events:
            if isinstance(ev, rules.PlayerSeated):
                await services.player_store(room_id=self.room_id, user_id=ev.user_id,
                                            nickname=ev.nickname)
            elif isinstance(ev, rules.AnswerAccepted):
                if not await services.answer_store(room_id=self.room_id, record=ev.record):
                    return ev
            elif isinstance(ev, rules.StatusChanged) and ev.status == "playing":
                await services.room_status_set(room_id=self.room_id, status="playing")
            elif isinstance(ev, rules.Finished):
                await services.results_store(room_id=self.room_id,
                                             leaderboard=list(ev.leaderboard))
        return None

    async def _duplicate(self, refused: rules.AnswerAccepted) -> None:
        """MySQL holds an answer this state did not know (an earlier driver stored it): adopt the
        stored rows and refuse this one."""
        rows = await answers_list(room_id=self.room_id)
        self.game = rules.answers_merge(self.game, rows)
        await self.snapshot_save(time.monotonic())
        await self._send([rules.Rejected(refused.conn, "duplicate_answer",
                                         "you already answered this question")])

    async def _send(self, events: list) -> None:
        """Each process that holds a socket the frames are for gets them in one piece: this one
        (whose inbox is `owner`) first, as it needs no round trip."""
        routes = frames_route(events, conns=_conns(self.game))
        for proc in sorted(routes, key=lambda p: p != self.owner):
            frames = routes[proc]
            try:
                await self.post(self.room_id, proc, frames)
            except Exception as exc:
                kinds = ", ".join(sorted({f["type"] for _, f in frames}))
                log_failure(f"room {self.room_id}: {kinds} frames not delivered", exc)


async def game_load(room_id: str) -> Game:
    """The room as the last driver left it: the Redis snapshot (or, if it expired, the database),
    plus every answer row MySQL holds."""
    now = time.monotonic()
    snap = await store.snapshot_load(room_id=room_id)
    if snap is not None:
        data, age = snap
        game = rules.game_from_json(data, now=now, age=age)
    else:
        game = await _game_from_db(room_id, now)
    return rules.answers_merge(game, await answers_list(room_id=room_id))


async def _game_from_db(room_id: str, now: float) -> Game:
    room = await room_get(room_id=room_id)
    questions = await room_questions_get(room_id=room_id)
    if room is None or not questions:
        raise RoomGone(room_id)
    game = rules.game_new(room_id=room_id, host_id=int(room["host_id"]),
                          seconds=float(room["seconds"]), questions=questions)
    rows = await answers_list(room_id=room_id)
    game = rules.answers_merge(game, rows)
    if room["status"] == "finished":
        game.phase, game.index = rules.FINISHED, len(questions) - 1
    elif room["status"] == "playing":
        # Without a snapshot the open question's clock is lost: show the last answered one as
        # revealed and move on at once.
        answered = {int(r["position"]) for r in rows if r["position"] is not None}
        game.phase, game.index, game.advance_at = rules.REVEAL, max(answered, default=0), now
    return game


class Hub:
    """This process's side of every room: its inbox, the rooms it drives, its local members."""

    def __init__(self) -> None:
        self.inbox: str | None = None
        self.drivers: dict[str, RoomDriver] = {}
        self.local: dict[str, dict[str, Member]] = {}
        self.synced: dict[str, str | None] = {}  # room -> driver our members' joins went to
        self.resync: set[str] = set()  # rooms whose driver missed one of our joins or leaves
        self.orphans: dict[str, float] = {}  # room -> when we first saw its lease vanished
        self.missing: set[str] = set()  # processes whose heartbeat was gone at the last check
        self.claim_locks: dict[str, asyncio.Lock] = {}
        self.commands: asyncio.Queue[dict] = asyncio.Queue(COMMANDS_QUEUED)  # rooms driven here
        self.frames_behind = 0  # frames that went through a consumer's queue (fanout.texts_push)
        self.tasks: list[asyncio.Task] = []

    @property
    def proc(self) -> str:
        """This process in connection ids and heartbeats: its inbox, where frames for its
        sockets are sent."""
        if self.inbox is None:
            raise RuntimeError("the game hub is not started (it starts with the ASGI lifespan)")
        return self.inbox

    # --- lifecycle (ASGI lifespan) ---

    async def start(self) -> None:
        self.inbox = await get_channel_layer().new_channel()
        self.commands = asyncio.Queue(COMMANDS_QUEUED)
        await store.proc_beat(proc=self.proc)
        if self.redis_restored not in memberships.restored:
            memberships.restored.append(self.redis_restored)
        self.tasks = [asyncio.create_task(self._inbox_loop(), name="quiz-driver-inbox"),
                      asyncio.create_task(self._command_loop(), name="quiz-driver-commands"),
                      asyncio.create_task(self._watch_loop(), name="quiz-driver-watch")]
        log.info("game driver inbox %s", self.inbox)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []
        for room_id in list(self.drivers):
            await self._drop(room_id, release=True)
        await store.proc_forget(proc=self.proc)
        await store.redis_close()

    # --- what consumers call ---

    async def member_join(self, *, room_id: str, member: Member) -> bool:
        members = self.local.setdefault(room_id, {})
        first = not members
        members[member.conn] = member
        owner = await self.command(room_id=room_id, cmd=member.join())
        if first and owner is not None:
            self.synced[room_id] = owner
        return owner is not None

    async def member_leave(self, *, room_id: str, conn: str) -> None:
        members = self.local.get(room_id, {})
        members.pop(conn, None)
        if not members:
            self.local.pop(room_id, None)
            self.synced.pop(room_id, None)
        await self.command(room_id=room_id, cmd=rules.Leave(conn))

    async def command(self, *, room_id: str, cmd: Command, hops: int = 0) -> str | None:
        """Hand the command to the room's driver (taking the lease if nobody holds it).
        The driver's inbox, or None if it could not be delivered (then the room is re-synced
        at the next watch round, so a lost join or leave is made good)."""
        try:
            driver = self.drivers.get(room_id)
            if driver is not None and time.monotonic() < driver.held_until:
                await driver.step(cmd)  # ours for sure: no lease lookup (LEASE_TRUST)
                return self.inbox
            owner = await store.lease_owner(room_id=room_id)
            if owner is None or (owner == self.inbox and room_id not in self.drivers):
                owner = await self.claim(room_id)
            if owner is None:
                raise RoomOrphaned(room_id)
            if owner == self.inbox:
                await self.drivers[room_id].step(cmd)
            else:
                await get_channel_layer().send(owner, {
                    "type": "driver.command", "room_id": room_id, "hops": hops,
                    "command": command_encode(cmd)})
            return owner
        except Exception as exc:
            self.resync.add(room_id)
            if isinstance(exc, RoomOrphaned):
                log.info("room %s: %s waits for a driver", room_id, type(cmd).__name__)
            else:
                log_failure(f"room {room_id}: {type(cmd).__name__} not delivered", exc)
            return None

    # --- frames ---

    async def frames_post(self, room_id: str, proc: str, frames: list[Routed]) -> None:
        """A driver's frames for the sockets of process `proc`: written here if they are ours,
        else sent to that process's inbox in one message."""
        if proc == self.proc:
            await self.frames_deliver(room_id, frames)
        else:
            await get_channel_layer().send(proc, {"type": "room.frames", "room_id": room_id,
                                                  "frames": frames})

    async def frames_deliver(self, room_id: str, frames: list[Routed]) -> None:
        """Write frames to this process's sockets of the room."""
        members = self.local.get(room_id)
        if members:
            self.frames_behind += await texts_push(frames_texts(frames, members))

    def stats(self) -> dict:
        """This process's part of the game, for /api/health."""
        return {"rooms_driven": len(self.drivers),
                "sockets": sum(len(m) for m in self.local.values()),
                "frames_queued_behind": self.frames_behind}

    async def redis_restored(self) -> None:
        """Redis was away and may have lost anything (it restarted empty, or a failover promoted a
        replica without the last writes, and messages sent meanwhile are gone): every room driven
        here saves its snapshot again, and every room of ours gets a Sync at the next watch round,
        so each member gets `state`. Raises what an outage raises (Memberships calls it again)."""
        self.synced.clear()
        self.resync.update(self.local)
        for driver in list(self.drivers.values()):
            async with driver.lock:
                await driver.snapshot_save(time.monotonic())

    # --- leases ---

    async def claim(self, room_id: str, *, force: bool = False) -> str | None:
        """Drive the room if nobody does; the inbox of whoever drives it now, or None if its
        lease vanished and its last driver may still take it back (try again with force one
        watch round later)."""
        lock = self.claim_locks.setdefault(room_id, asyncio.Lock())
        async with lock:
            if room_id in self.drivers:
                return self.inbox
            asked = time.monotonic()
            took = await store.lease_take(room_id=room_id, owner=self.inbox, force=force)
            if took == -1:
                return None
            if took == 0:
                owner = await store.lease_owner(room_id=room_id)
                if owner is None:
                    return None  # released just now: the next round takes it
                if owner != self.inbox:
                    return owner
            self.orphans.pop(room_id, None)
            try:
                game = await game_load(room_id)
            except Exception:
                await store.lease_release(room_id=room_id, owner=self.inbox)
                raise
            driver = self.drivers[room_id] = RoomDriver(room_id, game, owner=self.inbox,
                                                        post=self.frames_post)
            if took == 1:
                driver.held_until = asked + LEASE_TRUST
            driver.start()
            log.info("room %s: now driven here (phase %s, question %d)", room_id, game.phase,
                     game.index)
            return self.inbox

    async def _drop(self, room_id: str, *, release: bool) -> None:
        driver = self.drivers.pop(room_id, None)
        self.claim_locks.pop(room_id, None)
        if driver is None:
            return
        await driver.stop()
        if release:
            try:
                async with driver.lock:
                    await driver.snapshot_save(time.monotonic())
                await store.lease_release(room_id=room_id, owner=self.inbox)
            except Exception as exc:
                log_failure(f"room {room_id}: release failed", exc)

    # --- background tasks ---

    async def _inbox_loop(self) -> None:
        """Frames from other processes' drivers are written out at once; commands for the rooms
        driven here queue for `_command_loop`, so that a step waiting on MySQL never holds up
        the frames of other rooms."""
        layer = get_channel_layer()
        while True:
            try:
                message = await layer.receive(self.inbox)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure("driver inbox: receive failed", exc)
                await asyncio.sleep(0.5)
                continue
            if message.get("type") != "room.frames":
                await self.commands.put(message)  # full: the inbox waits, and its senders see
                continue  # the channel layer's capacity, as they did before this queue
            try:
                await self.frames_deliver(message["room_id"], message["frames"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure(f"room {message.get('room_id')}: frames not written", exc)

    async def _command_loop(self) -> None:
        while True:
            message = await self.commands.get()
            try:
                await self._inbox_handle(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure(f"driver inbox: {message.get('type')!r} failed", exc)

    async def _inbox_handle(self, message: dict) -> None:
        room_id, cmd = message["room_id"], command_decode(message["command"])
        driver = self.drivers.get(room_id)
        if driver is not None:
            await driver.step(cmd)
        elif message.get("hops", 0) < MAX_HOPS:
            # Not ours (any more): route it again, which may mean taking the room over.
            await self.command(room_id=room_id, cmd=cmd, hops=message.get("hops", 0) + 1)
        else:
            log.warning("room %s: dropped %s after %d hops", room_id, type(cmd).__name__,
                        MAX_HOPS)

    async def _watch_loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.watch_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure("driver watch failed", exc)
            await asyncio.sleep(max(0.1, WATCH_EVERY - (time.monotonic() - started)))

    async def watch_once(self) -> None:
        await store.proc_beat(proc=self.proc)
        for room_id in list(self.drivers):
            asked = time.monotonic()
            held = await store.lease_renew(room_id=room_id, owner=self.inbox)
            if held and room_id in self.drivers:
                self.drivers[room_id].held_until = asked + LEASE_TRUST
            if held == 0:
                log.warning("room %s: lease lost, no longer driven here", room_id)
                await self._drop(room_id, release=False)
            elif held == 2:
                log.warning("room %s: lease had vanished (Redis restarted or failed over?); "
                            "taken back", room_id)
                driver = self.drivers[room_id]
                async with driver.lock:
                    await driver.snapshot_save(time.monotonic())
        await self._prune_dead_processes()
        rooms = sorted(set(self.local) | self.resync)
        owners = await store.leases_owners(room_ids=rooms)
        now = time.monotonic()
        self.orphans = {r: t for r, t in self.orphans.items() if r in owners}
        for room_id, owner in owners.items():
            if owner is None:
                seen = self.orphans.setdefault(room_id, now)
                owner = await self.claim(room_id, force=now - seen >= ORPHAN_WAIT)
                if owner is None:
                    continue
                log.info("room %s: had no driver; %s", room_id,
                         "driven here now" if owner == self.inbox else f"driven by {owner}")
            self.orphans.pop(room_id, None)
            if owner != self.synced.get(room_id) or room_id in self.resync:
                members = tuple(m.join() for m in self.local.get(room_id, {}).values())
                self.resync.discard(room_id)
                sent = await self.command(room_id=room_id,
                                          cmd=rules.Sync(self.proc + "/", members))
                if sent is not None and room_id in self.local:
                    self.synced[room_id] = sent
        await self._release_idle()

    async def _prune_dead_processes(self) -> None:
        """Drop the connections of processes whose heartbeat is gone at two checks in a row
        (one miss may be Redis that restarted empty a moment ago)."""
        procs = {conn_proc(c) for d in self.drivers.values() for c in _conns(d.game)}
        procs.discard(self.proc)
        missing = procs - await store.procs_alive(procs=sorted(procs))
        dead, self.missing = missing & self.missing, missing
        for proc in dead:
            for driver in list(self.drivers.values()):
                if any(conn_proc(c) == proc for c in _conns(driver.game)):
                    log.info("room %s: dropping connections of dead process %s",
                             driver.room_id, proc)
                    await driver.step(rules.Sync(proc + "/", ()))

    async def _release_idle(self) -> None:
        now = time.monotonic()
        for room_id, driver in list(self.drivers.items()):
            if _conns(driver.game) or room_id in self.local:
                driver.idle_since = None
            elif driver.idle_since is None:
                driver.idle_since = now
            elif now - driver.idle_since > IDLE_RELEASE:
                log.info("room %s: idle, released", room_id)
                await self._drop(room_id, release=True)


hub = Hub()


async def hub_start() -> None:
    await hub.start()


async def hub_stop() -> None:
    await hub.stop()
