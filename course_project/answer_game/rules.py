"""The quiz battle's rules: a pure state machine, no I/O and no clock reads.

    game, events = apply(game, Answer(user_id=7, conn="c1", question_id=12, choice=2), now=41.3)
    game, events = tick(game, now=42.0)      # closes the question at its deadline, advances

Every function takes `now` (the driver's time.monotonic()) explicitly and returns a NEW game plus
the events the edges act on: frames to broadcast or to send to one connection (`conn`), rows to
persist. Phases: lobby -> question -> reveal -> question -> ... -> reveal -> finished.
A finished room may point to its rematch: a new room, made by the edges, where the same players
hold seats.

The correct choice of a question reaches a frame only in its reveal (and in `state` after it).
`AnswerAccepted.record` holds the database row (choice, correctness, points): the driver stores it,
and only sends the bare `answer_ack`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

LOBBY, QUESTION, REVEAL, FINISHED = "lobby", "question", "reveal", "finished"
PHASES = (LOBBY, QUESTION, REVEAL, FINISHED)
REVEAL_PAUSE_MAX = 3.0
# Seats per room. In the lobby every join or leave sends the whole lobby (up to about 140 bytes a
# seat, with 32-character Chinese nicknames) to every socket of the room, so an unbounded room
# would let anyone make every join cost megabytes.
SEATS_MAX = 200
# A seat whose last socket dropped counts as present for this long: a reload or a Wi-Fi blip does
# not close the open question early for everyone (it would close with "Time is up" for the one
# coming back). A player gone longer stops holding the room up.
SEAT_GRACE = 5.0


# --- state -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    question_id: int
    text: str
    choices: list[str]
    answer: int


@dataclass
class Player:
    user_id: int
    nickname: str
    conns: list[str] = field(default_factory=list)  # open websockets of this player
    left_at: float | None = None  # when the last of them closed, while the grace period runs

    @property
    def connected(self) -> bool:
        return bool(self.conns)


@dataclass(frozen=True)
class AnswerRecord:
    """One accepted answer: exactly one row of quiz_game.answer."""

    question_id: int
    user_id: int
    choice: int
    correct: bool
    elapsed_ms: int
    points: int


@dataclass
class Game:
    room_id: str
    host_id: int
    seconds: float
    questions: list[Question]
    phase: str = LOBBY
    index: int = -1  # position of the current question
    deadline: float | None = None  # the open question closes at this monotonic time
    advance_at: float | None = None  # after a reveal, the next question opens at this time
    players: dict[int, Player] = field(default_factory=dict)
    watchers: dict[str, int] = field(default_factory=dict)  # conn -> user_id (big screens)
    answers: dict[int, dict[int, AnswerRecord]] = field(default_factory=dict)  # qid -> uid ->
    grace: float = SEAT_GRACE  # see SEAT_GRACE
    rematch: str | None = None  # once finished: the room the host opened for a rematch

    @property
    def pause(self) -> float:
        return min(REVEAL_PAUSE_MAX, self.seconds)

    @property
    def current(self) -> Question | None:
        return self.questions[self.index] if 0 <= self.index < len(self.questions) else None

    def score(self, user_id: int) -> int:
        return sum(rows[user_id].points for rows in self.answers.values() if user_id in rows)

    def scores(self) -> dict[int, int]:
        """Every player's score, in one pass over the answers (not one pass per player)."""
        totals = dict.fromkeys(self.players, 0)
        for rows in self.answers.values():
            for uid, row in rows.items():
                totals[uid] = totals.get(uid, 0) + row.points
        return totals


def game_new(*, room_id: str, host_id: int, seconds: float, questions: list[Question],
             seats: Sequence[tuple[int, str]] = ()) -> Game:
    """A room in its lobby. `seats` (user_id, nickname) are taken before anyone connects: a
    rematch keeps the last game's players in their seats, shown as away until they are back."""
    if not questions:
        raise ValueError("a game needs at least one question")
    if not seconds > 0:
        raise ValueError("seconds must be positive")
    if len(seats) > SEATS_MAX:
        raise ValueError(f"at most {SEATS_MAX} seats")
    return Game(room_id=room_id, host_id=host_id, seconds=float(seconds), questions=questions,
                players={uid: Player(uid, nickname) for uid, nickname in seats})


def points_for(*, correct: bool, elapsed: float, seconds: float) -> int:
    """round(1000 * (1 - elapsed / seconds / 2)) for a correct answer (500..1000), else 0."""
    if not correct:
        return 0
    elapsed = min(max(elapsed, 0.0), seconds)
    return round(1000 * (1 - elapsed / seconds / 2))


# --- commands (what consumers forward to the driver) -------------------------------------------


@dataclass(frozen=True)
class Join:
    user_id: int
    nickname: str
    conn: str
    watch: bool = False  # a big screen: receives everything, is not a player


@dataclass(frozen=True)
class Leave:
    conn: str


@dataclass(frozen=True)
class Sync:
    """All open connections whose name starts with `prefix` (one process): the driver forgets
    the others with that prefix and (re)joins these. Sent after a driver change."""

    prefix: str
    members: tuple[Join, ...] = ()


@dataclass(frozen=True)
class Start:
    user_id: int
    conn: str


@dataclass(frozen=True)
class Next:
    user_id: int
    conn: str


@dataclass(frozen=True)
class Answer:
    user_id: int
    conn: str
    question_id: Any  # as received: the rules validate it
    choice: Any


@dataclass(frozen=True)
class Rematch:
    """The host opened `room_id` for a rematch of this finished game (the edges made that room
    and checked who asked and when, so anything else is ignored)."""

    user_id: int
    room_id: str


Command = Join | Leave | Sync | Start | Next | Answer | Rematch


# --- events (what the edges send or store) -----------------------------------------------------


def _player_rows(game: Game) -> list[dict]:
    return [{"user_id": p.user_id, "nickname": p.nickname, "connected": p.connected}
            for p in game.players.values()]


def scores_list(game: Game) -> list[dict]:
    totals = game.scores()
    rows = [{"user_id": p.user_id, "nickname": p.nickname, "score": totals[p.user_id]}
            for p in game.players.values()]
    return sorted(rows, key=lambda r: (-r["score"], r["user_id"]))


def leaderboard_list(game: Game) -> list[dict]:
    """Sorted by score (high first), then user_id; equal scores share a rank (1, 1, 3)."""
    board = []
    for i, row in enumerate(scores_list(game)):
        rank = board[-1]["rank"] if board and board[-1]["score"] == row["score"] else i + 1
        board.append({**row, "rank": rank})
    return board


@dataclass(frozen=True)
class LobbyChanged:
    room_id: str
    host_id: int
    players: tuple[dict, ...]

    def frame(self) -> dict:
        return {"type": "lobby", "room_id": self.room_id, "host_id": self.host_id,
                "players": list(self.players)}


@dataclass(frozen=True)
class QuestionOpened:
    question_id: int
    index: int
    total: int
    text: str
    choices: tuple[str, ...]
    seconds: float

    def frame(self) -> dict:
        return {"type": "question", "question_id": self.question_id, "index": self.index,
                "total": self.total, "text": self.text, "choices": list(self.choices),
                "seconds": self.seconds}


@dataclass(frozen=True)
class ProgressChanged:
    question_id: int
    answered: int
    total: int

    def frame(self) -> dict:
        return {"type": "progress", "question_id": self.question_id, "answered": self.answered,
                "total": self.total}


@dataclass(frozen=True)
class Revealed:
    """Carries every player's points; each player is sent only their own (`points`, by
    `project_reveal`)."""

    question_id: int
    index: int
    correct: int
    points: tuple[tuple[int, int], ...]  # (user_id, points) for every player
    scores: tuple[dict, ...]

    def frame(self) -> dict:
        return {"type": "reveal", "question_id": self.question_id, "index": self.index,
                "correct": self.correct, "points_all": [list(p) for p in self.points],
                "scores": list(self.scores)}


@dataclass(frozen=True)
class Finished:
    leaderboard: tuple[dict, ...]

    def frame(self) -> dict:
        return {"type": "finished", "leaderboard": list(self.leaderboard)}


@dataclass(frozen=True)
class RematchOpened:
    room_id: str

    def frame(self) -> dict:
        return {"type": "rematch", "room_id": self.room_id}


@dataclass(frozen=True)
class AnswerAccepted:
    conn: str
    record: AnswerRecord  # for the database only

    def frame(self) -> dict:
        return {"type": "answer_ack", "question_id": self.record.question_id}


@dataclass(frozen=True)
class Rejected:
    conn: str
    code: str
    message: str

    def frame(self) -> dict:
        return {"type": "error", "code": self.code, "message": self.message}


@dataclass(frozen=True)
class StateSent:
    conn: str
    state: dict

    def frame(self) -> dict:
        return self.state


@dataclass(frozen=True)
class PlayerSeated:
    """A new player took a seat (the driver stores a quiz_game.player row)."""

    user_id: int
    nickname: str

    def frame(self) -> None:
        return None


@dataclass(frozen=True)
class StatusChanged:
    status: str  # "playing" | "finished" (quiz_game.room.status)

    def frame(self) -> None:
        return None


Event = (LobbyChanged | QuestionOpened | ProgressChanged | Revealed | Finished | RematchOpened
         | AnswerAccepted | Rejected | StateSent | PlayerSeated | StatusChanged)


def project_reveal(frame: dict, *, user_id: int) -> dict:
    """The reveal frame one player receives: their own `points` instead of everyone's."""
    out = {k: v for k, v in frame.items() if k != "points_all"}
    points = dict((uid, pts) for uid, pts in frame.get("points_all", []))
    out["points"] = points.get(user_id)
    return out


# --- views of the state ------------------------------------------------------------------------


def _question_frame(game: Game) -> dict:
    q = game.current
    assert q is not None
    return QuestionOpened(q.question_id, game.index, len(game.questions), q.text,
                          tuple(q.choices), game.seconds).frame()


def _present(player: Player) -> bool:
    """Connected, or dropped so recently that the grace period still holds the seat."""
    return player.connected or player.left_at is not None


def _progress(game: Game) -> ProgressChanged:
    q = game.current
    assert q is not None
    answered = game.answers.get(q.question_id, {})
    total = sum(1 for p in game.players.values() if _present(p) or p.user_id in answered)
    return ProgressChanged(q.question_id, len(answered), total)


def _revealed(game: Game) -> Revealed:
    q = game.current
    assert q is not None
    answered = game.answers.get(q.question_id, {})
    points = tuple((uid, answered[uid].points if uid in answered else 0) for uid in game.players)
    return Revealed(q.question_id, game.index, q.answer, points, tuple(scores_list(game)))


def state_frame(game: Game, *, user_id: int, now: float) -> dict:
    """What a (re)connecting client needs to render the current phase."""
    player = user_id in game.players
    state: dict[str, Any] = {
        "type": "state", "phase": game.phase, "room_id": game.room_id, "host_id": game.host_id,
        "you": {"user_id": user_id, "player": player, "score": game.score(user_id)},
        "index": game.index, "total": len(game.questions), "seconds": game.seconds,
        "players": _player_rows(game), "scores": scores_list(game),
    }
    q = game.current
    if game.phase == QUESTION and q is not None:
        progress = _progress(game)
        state["question"] = _question_frame(game)
        state["remaining"] = round(max(0.0, (game.deadline or now) - now), 3)
        state["answered"] = user_id in game.answers.get(q.question_id, {})
        state["progress"] = {"answered": progress.answered, "total": progress.total}
    elif game.phase == REVEAL and q is not None:
        state["question"] = _question_frame(game)
        state["answered"] = user_id in game.answers.get(q.question_id, {})
        state["reveal"] = project_reveal(_revealed(game).frame(), user_id=user_id)
        state["next_in"] = round(max(0.0, (game.advance_at or now) - now), 3)
    elif game.phase == FINISHED:
        state["leaderboard"] = leaderboard_list(game)
        state["rematch"] = game.rematch
    return state


def _grace_ends(game: Game) -> list[float]:
    return [p.left_at + game.grace for p in game.players.values() if p.left_at is not None]


def wake_at(game: Game) -> float | None:
    """When the driver must call tick() next, if at all."""
    if game.phase == QUESTION:
        return min([t for t in (game.deadline, *_grace_ends(game)) if t is not None],
                   default=None)
    if game.phase == REVEAL:
        return game.advance_at
    return None


# --- transitions -------------------------------------------------------------------------------


def _open_next(game: Game, at: float) -> list:
    game.advance_at = None
    if game.index + 1 >= len(game.questions):
        game.phase, game.deadline = FINISHED, None
        return [Finished(tuple(leaderboard_list(game))), StatusChanged("finished")]
    game.index += 1
    game.phase, game.deadline = QUESTION, at + game.seconds
    q = game.current
    assert q is not None
    game.answers.setdefault(q.question_id, {})
    events: list = [QuestionOpened(q.question_id, game.index, len(game.questions), q.text,
                                   tuple(q.choices), game.seconds)]
    return events + [_progress(game)]


def _close(game: Game, at: float) -> list:
    game.phase, game.deadline, game.advance_at = REVEAL, None, at + game.pause
    return [_revealed(game)]


def _graces_end(game: Game, now: float) -> list:
    """Seats whose grace period ran out by `now` are left for good: in a question, the others may
    then all have answered (it closes, at that moment), else the progress shows one fewer."""
    ended = [p for p in game.players.values()
             if p.left_at is not None and p.left_at + game.grace <= now]
    if not ended:
        return []
    at = max(p.left_at + game.grace for p in ended)
    for p in ended:
        p.left_at = None
    if game.phase != QUESTION or game.deadline is None or at >= game.deadline:
        return []
    if _all_answered(game):
        return [_progress(game), *_close(game, at)]
    return [_progress(game)]


def _advance(game: Game, now: float) -> list:
    """Close what is due and open what is due, as of `now`; each step at its own scheduled time,
    so a driver that took over late replays the schedule instead of skipping it."""
    events: list = _graces_end(game, now)
    for _ in range(2 * len(game.questions) + 2):
        if game.phase == QUESTION and game.deadline is not None and now >= game.deadline:
            events += _close(game, game.deadline)
        elif game.phase == REVEAL and game.advance_at is not None and now >= game.advance_at:
            events += _open_next(game, game.advance_at)
        else:
            break
    return events


def _all_answered(game: Game) -> bool:
    q = game.current
    if game.phase != QUESTION or q is None:
        return False
    present = [p.user_id for p in game.players.values() if _present(p)]
    answered = game.answers.get(q.question_id, {})
    return bool(present) and all(uid in answered for uid in present)


def _after_presence(game: Game, now: float) -> list:
    """Who is connected changed: the lobby list, or the progress and maybe an early close."""
    if game.phase == LOBBY:
        return [LobbyChanged(game.room_id, game.host_id, tuple(_player_rows(game)))]
    if game.phase == QUESTION:
        events: list = [_progress(game)]
        if _all_answered(game):
            events += _close(game, now)
        return events
    return []


def _conn_owner(game: Game, conn: str) -> Player | None:
    return next((p for p in game.players.values() if conn in p.conns), None)


def _join(game: Game, cmd: Join, now: float) -> list:
    known = conn_known(game, cmd.conn)
    events: list = []
    if not known:
        if cmd.watch or (game.phase == FINISHED and cmd.user_id not in game.players):
            game.watchers[cmd.conn] = cmd.user_id
        else:
            player = game.players.get(cmd.user_id)
            if player is None and len(game.players) >= SEATS_MAX:
                game.watchers[cmd.conn] = cmd.user_id
                events.append(Rejected(cmd.conn, "room_full",
                                       f"all {SEATS_MAX} seats are taken: you are watching"))
            else:
                if player is None:
                    player = game.players[cmd.user_id] = Player(cmd.user_id, cmd.nickname)
                    events.append(PlayerSeated(cmd.user_id, cmd.nickname))
                player.conns.append(cmd.conn)
                player.left_at = None
                events += _after_presence(game, now)
    state = state_frame(game, user_id=cmd.user_id, now=now)
    return [*events, StateSent(cmd.conn, state)]


def conn_known(game: Game, conn: str) -> bool:
    return conn in game.watchers or _conn_owner(game, conn) is not None


def _leave(game: Game, cmd: Leave, now: float) -> list:
    if game.watchers.pop(cmd.conn, None) is not None:
        return []
    player = _conn_owner(game, cmd.conn)
    if player is None:
        return []
    player.conns.remove(cmd.conn)
    if player.connected:
        return []
    if game.phase == QUESTION:  # a blip or a reload: the seat is held for game.grace seconds
        player.left_at = now
        return []
    return _after_presence(game, now)


def _sync(game: Game, cmd: Sync, now: float) -> list:
    keep = {m.conn for m in cmd.members}
    gone = [c for c in game.watchers if c.startswith(cmd.prefix) and c not in keep]
    gone += [c for p in game.players.values() for c in p.conns
             if c.startswith(cmd.prefix) and c not in keep]
    events: list = []
    for conn in gone:
        events += _leave(game, Leave(conn), now)
    for member in cmd.members:
        events += _join(game, member, now)
    return events


def _start(game: Game, cmd: Start, now: float) -> list:
    if cmd.user_id != game.host_id:
        return [Rejected(cmd.conn, "not_host", "only the host can start the game")]
    if game.phase != LOBBY:
        return [Rejected(cmd.conn, "wrong_phase", f"the game is already in {game.phase}")]
    return [StatusChanged("playing"), *_open_next(game, now)]


def _next(game: Game, cmd: Next, now: float) -> list:
    if cmd.user_id != game.host_id:
        return [Rejected(cmd.conn, "not_host", "only the host can move to the next question")]
    if game.phase != REVEAL:
        return [Rejected(cmd.conn, "wrong_phase", f"'next' works after a reveal, not in "
                                                  f"{game.phase}")]
    return _open_next(game, now)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _answer(game: Game, cmd: Answer, now: float) -> list:
    def no(code: str, message: str) -> list:
        return [Rejected(cmd.conn, code, message)]

    # A stored answer is told `duplicate_answer` first, whatever the phase: a client that
    # resends after a reconnect learns for certain that its first answer counted, even when
    # the question has closed or the game has ended meanwhile.
    if _is_int(cmd.question_id) and cmd.user_id in game.answers.get(cmd.question_id, {}):
        return no("duplicate_answer", "you already answered this question")
    if game.phase not in (QUESTION, REVEAL):
        return no("wrong_phase", f"no question is open in {game.phase}")
    if not _is_int(cmd.question_id):
        return no("bad_field", "'question_id' must be an integer")
    q = game.current
    assert q is not None
    if cmd.question_id != q.question_id:
        return no("unknown_question", f"question {cmd.question_id} is not the current one")
    if not _is_int(cmd.choice) or not 0 <= cmd.choice < len(q.choices):
        return no("bad_choice", f"'choice' must be an integer 0-{len(q.choices) - 1}")
    if cmd.user_id not in game.players:
        return no("not_player", "you are watching this room, not playing in it")
    answered = game.answers.setdefault(q.question_id, {})
    if game.phase != QUESTION or game.deadline is None or now >= game.deadline:
        return no("too_late", "this question is closed")
    elapsed = now - (game.deadline - game.seconds)
    correct = cmd.choice == q.answer
    record = AnswerRecord(q.question_id, cmd.user_id, cmd.choice, correct,
                          round(max(0.0, elapsed) * 1000),
                          points_for(correct=correct, elapsed=elapsed, seconds=game.seconds))
    answered[cmd.user_id] = record
    events: list = [AnswerAccepted(cmd.conn, record), _progress(game)]
    if _all_answered(game):
        events += _close(game, now)
    return events


def _rematch(game: Game, cmd: Rematch, now: float) -> list:
    if cmd.user_id != game.host_id or game.phase != FINISHED or game.rematch is not None:
        return []
    game.rematch = cmd.room_id
    return [RematchOpened(cmd.room_id)]


_HANDLERS = {Join: _join, Leave: _leave, Sync: _sync, Start: _start, Next: _next, Answer: _answer,
             Rematch: _rematch}


def _clone(game: Game) -> Game:
    """A copy that the handlers may change without touching `game`. Questions and answer records
    are immutable, so they are shared; only the containers and the players (whose `conns` change)
    are copied. The answers of a closed question never change again (only `answers_merge` adds
    to them, and it copies first), so their dicts are shared too: a command costs the same late in
    a game as early on, and comparing two games skips the shared dicts by identity."""
    open_from = max(game.index, 0)
    still_open = {q.question_id for q in game.questions[open_from:]}
    return replace(
        game,
        players={uid: Player(p.user_id, p.nickname, list(p.conns), p.left_at)
                 for uid, p in game.players.items()},
        watchers=dict(game.watchers),
        answers={qid: dict(rows) if qid in still_open else rows
                 for qid, rows in game.answers.items()},
    )


def apply(game: Game, command: Command, *, now: float) -> tuple[Game, list]:
    """The new game and its events. Due deadlines are processed first, as of `now`."""
    game = _clone(game)
    events = _advance(game, now)
    events += _HANDLERS[type(command)](game, command, now)
    return game, events


def tick(game: Game, *, now: float) -> tuple[Game, list]:
    game = _clone(game)
    return game, _advance(game, now)


def answers_merge(game: Game, rows: list[dict]) -> Game:
    """Add stored answer rows the game does not know (a driver died between the INSERT and its
    snapshot). Rows: question_id, user_id, nickname, choice, correct, elapsed_ms, points."""
    game = _clone(game)
    game.answers = {qid: dict(rows) for qid, rows in game.answers.items()}  # closed ones too
    known = {q.question_id for q in game.questions}
    for row in rows:
        qid, uid = int(row["question_id"]), int(row["user_id"])
        if qid not in known:
            continue
        if uid not in game.players:
            game.players[uid] = Player(uid, str(row["nickname"]))
        game.answers.setdefault(qid, {}).setdefault(uid, AnswerRecord(
            qid, uid, int(row["choice"]), bool(row["correct"]), int(row["elapsed_ms"]),
            int(row["points"])))
    return game


# --- JSON snapshots ----------------------------------------------------------------------------


def game_to_json(game: Game, *, now: float) -> dict:
    """A JSON-able snapshot. Monotonic times do not travel between processes: the deadlines are
    stored as seconds remaining from `now`. The answers are not in it: each one is a row in
    MySQL before the game holds it, and whoever loads a snapshot merges those rows back in
    (`answers_merge`). So the snapshot stays a few KB however far the game is, and an answer
    that changes nothing else needs no new snapshot at all."""
    return {
        "v": 2,
        "room_id": game.room_id, "host_id": game.host_id, "seconds": game.seconds,
        "questions": [{"question_id": q.question_id, "text": q.text, "choices": list(q.choices),
                       "answer": q.answer} for q in game.questions],
        "phase": game.phase, "index": game.index,
        "deadline_in": None if game.deadline is None else game.deadline - now,
        "advance_in": None if game.advance_at is None else game.advance_at - now,
        "players": [{"user_id": p.user_id, "nickname": p.nickname, "conns": list(p.conns),
                     "left_in": None if p.left_at is None else p.left_at - now}
                    for p in game.players.values()],
        "watchers": [[conn, uid] for conn, uid in game.watchers.items()],
        "rematch": game.rematch,
    }


def snapshot_changes(game: Game) -> tuple:
    """What of `game_to_json` can change during a game (questions, room, host and seconds never
    do), with the clocks as monotonic times: equal values mean an equal snapshot."""
    return (game.phase, game.index, game.deadline, game.advance_at, game.rematch,
            tuple(game.watchers.items()),
            tuple((p.user_id, p.nickname, tuple(p.conns), p.left_at)
                  for p in game.players.values()))


def game_from_json(data: dict, *, now: float, age: float = 0.0) -> Game:
    """Rebuild on this process's clock: deadline = now + remaining - age of the snapshot."""
    if data.get("v") not in (1, 2):  # 1 also carried the answers
        raise ValueError(f"unknown snapshot version {data.get('v')!r}")

    def at(remaining: float | None) -> float | None:
        return None if remaining is None else now + remaining - age

    game = Game(
        room_id=data["room_id"], host_id=int(data["host_id"]), seconds=float(data["seconds"]),
        questions=[Question(**q) for q in data["questions"]],
        phase=data["phase"], index=int(data["index"]),
        deadline=at(data["deadline_in"]), advance_at=at(data["advance_in"]),
        players={int(p["user_id"]): Player(int(p["user_id"]), p["nickname"], list(p["conns"]),
                                           at(p.get("left_in")))
                 for p in data["players"]},
        watchers={conn: int(uid) for conn, uid in data["watchers"]},
        rematch=data.get("rematch"),
    )
    if game.phase not in PHASES:
        raise ValueError(f"unknown phase {game.phase!r}")
    for row in data.get("answers", ()):
        record = AnswerRecord(**row)
        game.answers.setdefault(record.question_id, {})[record.user_id] = record
    return game
