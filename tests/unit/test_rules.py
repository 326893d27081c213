"""The game rules as a pure state machine: no server, no database, no clock (time is passed in)."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict

import pytest

from answer_game import rules
from answer_game.rules import Answer, Join, Leave, Next, Rematch, Start, Sync
from common.resilience import TokenBucket

HOST, ANN, BOB = 1, 2, 3
Q = [rules.Question(10, "2+2?", ["3", "4", "5", "22"], 1),
     rules.Question(11, "Capital of France?", ["Paris", "Rome", "Oslo", "Bern"], 0)]


def new_game(seconds: float = 10.0) -> rules.Game:
    return rules.game_new(room_id="r1", host_id=HOST, seconds=seconds, questions=list(Q))


def run(game, *commands, now: float = 0.0):
    events = []
    for cmd in commands:
        game, out = rules.apply(game, cmd, now=now)
        events += out
    return game, events


def lobby_with(*users: int, now: float = 0.0) -> rules.Game:
    return run(new_game(), *(Join(u, f"u{u}", f"c{u}") for u in users), now=now)[0]


def started(*users: int, now: float = 100.0) -> rules.Game:
    return run(lobby_with(*users), Start(HOST, f"c{HOST}"), now=now)[0]


def of(events, cls):
    return [e for e in events if isinstance(e, cls)]


def errors(events):
    return [e.code for e in of(events, rules.Rejected)]


def test_no_command_changes_the_game_it_was_given():
    game = started(HOST, ANN, BOB, now=100.0)
    game, _ = run(game, Answer(ANN, "c2", 10, 1), now=101.0)
    before = copy.deepcopy(game)
    commands = [Answer(BOB, "c3", 10, 0), Leave("c2"), Join(ANN, "ann", "c9"),
                Join(HOST, "host", "screen", watch=True), Next(HOST, "c1")]
    for cmd in commands:
        after, _ = rules.apply(game, cmd, now=102.0)
        assert after is not game
    rules.tick(game, now=500.0)
    rules.answers_merge(game, [{"question_id": 10, "user_id": BOB, "nickname": "bob",
                                "choice": 1, "correct": 1, "elapsed_ms": 5, "points": 999}])
    assert game == before


def test_a_correct_answer_at_zero_seconds_scores_1000():
    game = started(HOST, ANN, now=100.0)
    _, events = run(game, Answer(ANN, "c2", 10, 1), now=100.0)
    [accepted] = of(events, rules.AnswerAccepted)
    assert (accepted.record.points, accepted.record.correct, accepted.record.elapsed_ms) == (
        1000, True, 0)


def test_a_correct_answer_just_before_the_deadline_scores_about_500():
    game = started(HOST, ANN, now=100.0)
    _, events = run(game, Answer(ANN, "c2", 10, 1), now=109.999)
    assert of(events, rules.AnswerAccepted)[0].record.points == 500


def test_points_follow_the_formula_and_a_wrong_answer_scores_zero():
    assert rules.points_for(correct=True, elapsed=2.5, seconds=10) == round(1000 * (1 - 0.125))
    assert rules.points_for(correct=True, elapsed=10, seconds=10) == 500
    assert rules.points_for(correct=False, elapsed=0, seconds=10) == 0
    game = started(HOST, ANN, now=100.0)
    _, events = run(game, Answer(ANN, "c2", 10, 0), now=101.0)
    assert of(events, rules.AnswerAccepted)[0].record.points == 0


def test_the_question_closes_at_its_deadline_and_the_next_one_opens_after_the_pause():
    game = started(HOST, ANN, now=100.0)
    assert rules.wake_at(game) == 110.0
    game, events = rules.tick(game, now=109.9)
    assert events == [] and game.phase == rules.QUESTION
    game, events = rules.tick(game, now=110.0)
    assert game.phase == rules.REVEAL and of(events, rules.Revealed)[0].correct == 1
    assert rules.wake_at(game) == 110.0 + game.pause == 113.0
    game, events = rules.tick(game, now=113.0)
    assert game.phase == rules.QUESTION and of(events, rules.QuestionOpened)[0].question_id == 11
    assert game.deadline == 123.0


def test_a_late_driver_replays_the_schedule_and_finishes():
    game = started(HOST, now=100.0)
    game, events = rules.tick(game, now=500.0)
    assert game.phase == rules.FINISHED
    assert [type(e).__name__ for e in events] == [
        "Revealed", "QuestionOpened", "ProgressChanged", "Revealed", "Finished", "StatusChanged"]


def test_the_question_closes_early_when_every_present_player_answered():
    game = started(HOST, ANN, BOB, now=100.0)
    game, _ = run(game, Leave("c3"), now=100.5)  # Bob dropped: held for the grace period only
    game, events = run(game, Answer(ANN, "c2", 10, 1), Answer(HOST, "c1", 10, 2), now=101.0)
    assert game.phase == rules.QUESTION  # Bob may be reloading his page
    assert rules.wake_at(game) == 100.5 + rules.SEAT_GRACE
    game, events = rules.tick(game, now=100.5 + rules.SEAT_GRACE)
    assert game.phase == rules.REVEAL  # gone for longer: nobody waits for him
    [reveal] = of(events, rules.Revealed)
    assert dict(reveal.points) == {HOST: 0, ANN: 950, BOB: 0}
    assert game.advance_at == 100.5 + rules.SEAT_GRACE + game.pause


def test_a_player_back_within_the_grace_period_finds_the_question_open_and_answers():
    game = started(HOST, ANN, now=100.0)
    game, _ = run(game, Answer(HOST, "c1", 10, 1), Leave("c2"), now=101.0)
    game, events = run(game, Join(ANN, "Ann", "c2b"), now=102.0)  # a one-second reload
    [state] = of(events, rules.StateSent)
    assert state.state["phase"] == rules.QUESTION and state.state["answered"] is False
    game, events = run(game, Answer(ANN, "c2b", 10, 1), now=103.0)
    assert of(events, rules.AnswerAccepted) and game.phase == rules.REVEAL


def test_progress_counts_present_players_and_those_who_answered():
    game = started(HOST, ANN, BOB, now=100.0)
    game, events = run(game, Answer(ANN, "c2", 10, 1), Leave("c2"), now=101.0)
    assert (events[-1].answered, events[-1].total) == (1, 3)
    game, events = run(game, Leave("c3"), now=101.0)
    assert events == []  # within the grace period Bob still counts
    game, events = rules.tick(game, now=101.0 + rules.SEAT_GRACE)
    assert game.phase == rules.QUESTION and (events[-1].answered, events[-1].total) == (1, 2)


def test_a_dropped_seat_survives_a_snapshot_with_its_grace_period():
    game = started(HOST, ANN, now=100.0)
    game, _ = run(game, Leave("c2"), now=101.0)
    data = rules.game_to_json(game, now=102.0)
    moved = rules.game_from_json(data, now=500.0)  # another process, another clock
    assert moved.players[ANN].left_at == 499.0
    assert rules.wake_at(moved) == 499.0 + rules.SEAT_GRACE


def test_a_second_answer_is_a_duplicate_and_changes_nothing():
    game = started(HOST, ANN, now=100.0)
    game, _ = run(game, Answer(ANN, "c2", 10, 0), now=101.0)
    again, events = run(game, Answer(ANN, "c2", 10, 1), now=102.0)
    assert errors(events) == ["duplicate_answer"]
    assert again.answers == game.answers


def test_a_stored_answer_sent_again_is_a_duplicate_in_any_later_phase():
    game = started(HOST, ANN, now=100.0)
    game, _ = run(game, Answer(ANN, "c2", 10, 0), now=101.0)
    revealed, _ = rules.tick(game, now=110.0)
    moved_on, _ = run(revealed, Next(HOST, "c1"), now=111.0)
    finished, _ = rules.tick(moved_on, now=1000.0)
    for later in (revealed, moved_on, finished):
        after, events = run(later, Answer(ANN, "c2", 10, 0), now=1000.0)
        assert errors(events) == ["duplicate_answer"] and after.answers[10] == later.answers[10]
    _, events = run(finished, Answer(HOST, "c1", 10, 0), now=1000.0)
    assert errors(events) == ["wrong_phase"]  # the host never answered it


def test_an_answer_after_the_deadline_is_too_late():
    game = started(HOST, ANN, now=100.0)
    after, events = run(game, Answer(ANN, "c2", 10, 1), now=110.0)
    assert errors(events) == ["too_late"] and after.score(ANN) == 0
    assert after.phase == rules.REVEAL  # the overdue question was closed first


@pytest.mark.parametrize(("question_id", "choice", "code"), [
    ("10", 1, "bad_field"), (None, 1, "bad_field"), (True, 1, "bad_field"),
    (99, 1, "unknown_question"), (11, 1, "unknown_question"),
    (10, 4, "bad_choice"), (10, -1, "bad_choice"), (10, "1", "bad_choice"),
    (10, True, "bad_choice"), (10, 1.0, "bad_choice"), (10, None, "bad_choice"),
])
def test_a_malformed_answer_is_rejected_with_its_code(question_id, choice, code):
    game = started(HOST, ANN, now=100.0)
    after, events = run(game, Answer(ANN, "c2", question_id, choice), now=101.0)
    assert errors(events) == [code] and after.answers == game.answers


def test_answering_in_the_lobby_or_after_the_end_is_the_wrong_phase():
    _, events = run(lobby_with(HOST, ANN), Answer(ANN, "c2", 10, 1))
    assert errors(events) == ["wrong_phase"]
    finished, _ = rules.tick(started(HOST, ANN, now=0.0), now=1000.0)
    _, events = run(finished, Answer(ANN, "c2", 11, 1), now=1000.0)
    assert errors(events) == ["wrong_phase"]


def test_only_the_host_starts_and_advances_and_only_in_the_right_phase():
    lobby = lobby_with(HOST, ANN)
    _, events = run(lobby, Start(ANN, "c2"), Next(HOST, "c1"))
    assert errors(events) == ["not_host", "wrong_phase"]
    game = started(HOST, ANN, now=100.0)
    _, events = run(game, Start(HOST, "c1"), Next(HOST, "c1"), now=101.0)
    assert errors(events) == ["wrong_phase", "wrong_phase"]
    revealed, _ = rules.tick(game, now=110.0)
    _, events = run(revealed, Next(ANN, "c2"), now=111.0)
    assert errors(events) == ["not_host"]
    game, events = run(revealed, Next(HOST, "c1"), now=111.0)
    assert game.phase == rules.QUESTION and game.deadline == 121.0


def test_a_closed_questions_answers_are_shared_by_copies_and_never_changed():
    game = started(HOST, ANN, BOB, now=100.0)
    game, _ = run(game, Answer(HOST, "c1", 10, 1), Answer(ANN, "c2", 10, 1),
                  Answer(BOB, "c3", 10, 0), now=101.0)  # all answered: closed, revealed
    game, _ = run(game, Next(HOST, "c1"), now=102.0)
    assert game.current.question_id == 11
    before = copy.deepcopy(game)
    after, _ = rules.apply(game, Answer(ANN, "c2", 11, 0), now=103.0)
    assert after.answers[10] is game.answers[10]  # closed: shared, not copied
    assert after.answers[11] is not game.answers[11] and ANN in after.answers[11]
    merged = rules.answers_merge(game, [{"question_id": 10, "user_id": 9, "nickname": "late",
                                         "choice": 1, "correct": 1, "elapsed_ms": 5,
                                         "points": 999}])
    assert 9 in merged.answers[10] and game == before


def test_a_watcher_sees_the_game_but_cannot_answer():
    game, events = run(new_game(), Join(HOST, "host", "screen", watch=True), Join(ANN, "ann", "c2"))
    assert list(game.players) == [ANN] and game.watchers == {"screen": HOST}
    game, _ = run(game, Start(HOST, "screen"), now=100.0)
    _, events = run(game, Answer(HOST, "screen", 10, 1), now=101.0)
    assert errors(events) == ["not_player"]


def test_a_full_room_seats_nobody_new_but_lets_them_watch_and_its_players_return(monkeypatch):
    monkeypatch.setattr(rules, "SEATS_MAX", 3)
    game = lobby_with(HOST, ANN, BOB)
    game, events = run(game, Join(4, "dan", "c4"))
    assert list(game.players) == [HOST, ANN, BOB] and game.watchers == {"c4": 4}
    assert errors(events) == ["room_full"] and not of(events, rules.LobbyChanged)
    [state] = of(events, rules.StateSent)
    assert state.state["you"]["player"] is False
    game, events = run(game, Leave("c2"), Join(ANN, "u2", "c2-again"))  # a seat is kept
    assert errors(events) == [] and game.players[ANN].connected
    game, _ = run(game, Start(HOST, "c1"), now=100.0)
    _, events = run(game, Answer(4, "c4", 10, 1), now=101.0)
    assert errors(events) == ["not_player"]


def test_a_reconnecting_player_keeps_seat_and_score_and_gets_the_state():
    game = started(HOST, ANN, now=100.0)
    game, _ = run(game, Answer(ANN, "c2", 10, 1), Leave("c2"), now=101.0)
    assert not game.players[ANN].connected and game.score(ANN) == 950
    game, events = run(game, Join(ANN, "u2", "c2-again"), now=102.0)
    [state] = of(events, rules.StateSent)
    assert state.conn == "c2-again" and game.players[ANN].connected
    frame = state.frame()
    assert (frame["phase"], frame["you"]["score"], frame["answered"]) == ("question", 950, True)
    assert frame["remaining"] == 8.0
    assert list(game.players) == [HOST, ANN] and of(events, rules.PlayerSeated) == []


def test_a_second_tab_of_the_same_player_keeps_them_connected_when_one_closes():
    game, _ = run(lobby_with(HOST, ANN), Join(ANN, "u2", "c2-tab2"), Leave("c2"))
    assert game.players[ANN].connected


def test_sync_drops_the_connections_a_process_no_longer_has_and_rejoins_the_others():
    game, _ = run(lobby_with(HOST), Join(ANN, "u2", "p1!a"), Join(BOB, "u3", "p1!b"))
    game, events = run(game, Sync("p1!", (Join(BOB, "u3", "p1!b"),)))
    assert not game.players[ANN].connected and game.players[BOB].connected
    assert [s.conn for s in of(events, rules.StateSent)] == ["p1!b"]


def test_lobby_frames_list_players_with_their_connection_state():
    game, events = run(lobby_with(HOST), Join(ANN, "ann", "c2"), Leave("c2"))
    frames = [e.frame() for e in of(events, rules.LobbyChanged)]
    assert frames[-1]["players"] == [{"user_id": HOST, "nickname": "u1", "connected": True},
                                     {"user_id": ANN, "nickname": "ann", "connected": False}]


def _keys(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from _keys(v)


def test_no_frame_before_the_reveal_carries_the_correct_answer():
    game = lobby_with(HOST, ANN)
    game, events = run(game, Start(HOST, "c1"), Join(BOB, "u3", "c3"), Answer(ANN, "c2", 10, 1),
                       Answer(BOB, "c3", 10, 99), Join(ANN, "u2", "c2b"), now=100.0)
    assert game.phase == rules.QUESTION
    frames = [e.frame() for e in events if e.frame() is not None]
    assert {"question", "answer_ack", "progress", "state", "error"} <= {f["type"] for f in frames}
    for frame in frames:
        assert not {"correct", "answer", "points", "points_all"} & set(_keys(frame)), frame
    game, events = rules.tick(game, now=110.0)
    assert of(events, rules.Revealed)[0].frame()["correct"] == 1


def test_each_player_gets_only_their_own_points_from_the_reveal():
    game = started(HOST, ANN, now=100.0)
    _, events = run(game, Answer(ANN, "c2", 10, 1), Answer(HOST, "c1", 10, 0), now=100.0)
    frame = of(events, rules.Revealed)[0].frame()
    mine = rules.project_reveal(frame, user_id=ANN)
    assert (mine["points"], "points_all" in mine) == (1000, False)
    assert mine["scores"][0] == {"user_id": ANN, "nickname": "u2", "score": 1000}
    assert rules.project_reveal(frame, user_id=99)["points"] is None


def test_the_leaderboard_ranks_ties_equally_and_orders_by_score_then_user_id():
    game = started(HOST, ANN, BOB, 4, now=100.0)
    game, _ = run(game, Answer(BOB, "c3", 10, 1), Answer(ANN, "c2", 10, 1),
                  Answer(4, "c4", 10, 1), Answer(HOST, "c1", 10, 0), now=101.0)
    game, _ = run(game, Answer(4, "c4", 11, 3), now=104.0)  # the 3 s pause has passed
    game, events = rules.tick(game, now=1000.0)
    [finished] = of(events, rules.Finished)
    board = [(r["user_id"], r["score"], r["rank"]) for r in finished.leaderboard]
    assert board == [(ANN, 950, 1), (BOB, 950, 1), (4, 950, 1), (HOST, 0, 4)]
    assert of(events, rules.StatusChanged)[0].status == "finished"


def test_a_snapshot_survives_json_and_keeps_the_remaining_time():
    game = started(HOST, ANN, now=100.0)
    game, _ = run(game, Answer(ANN, "c2", 10, 1), now=102.0)
    text = json.dumps(rules.game_to_json(game, now=103.0))
    back = rules.game_from_json(json.loads(text), now=5000.0, age=0.5)
    assert back.deadline == pytest.approx(5000.0 + 7.0 - 0.5)
    assert (back.players, back.phase, back.index) == (game.players, game.phase, game.index)
    assert back.answers == {} and game.answers  # the answers come back from MySQL rows
    rows = [{**asdict(r), "nickname": "u2"} for r in game.answers[10].values()]
    assert rules.answers_merge(back, rows).answers == game.answers
    assert rules.game_to_json(rules.game_from_json(json.loads(text), now=7.0), now=7.0) == \
        json.loads(text)


def test_only_what_the_snapshot_holds_changes_its_fingerprint():
    game = started(HOST, ANN, BOB, now=100.0)
    answered, _ = run(game, Answer(ANN, "c2", 10, 1), now=101.0)
    assert rules.snapshot_changes(answered) == rules.snapshot_changes(game)
    for later in (run(game, Leave("c3"), now=101.0)[0], rules.tick(game, now=200.0)[0],
                  run(game, Join(HOST, "host", "screen", watch=True), now=101.0)[0]):
        assert rules.snapshot_changes(later) != rules.snapshot_changes(game)
        assert rules.game_to_json(later, now=0.0) != rules.game_to_json(game, now=0.0)


def test_stored_answer_rows_the_snapshot_missed_are_merged_back():
    game = started(HOST, ANN, now=100.0)
    rows = [{"question_id": 10, "user_id": ANN, "nickname": "u2", "choice": 1, "correct": 1,
             "elapsed_ms": 500, "points": 975},
            {"question_id": 10, "user_id": 7, "nickname": "seven", "choice": 0, "correct": 0,
             "elapsed_ms": 700, "points": 0}]
    merged = rules.answers_merge(game, rows)
    assert merged.score(ANN) == 975 and merged.players[7].nickname == "seven"
    _, events = run(merged, Answer(ANN, "c2", 10, 1), now=101.0)
    assert errors(events) == ["duplicate_answer"]


def test_a_rematch_is_announced_once_to_the_room_and_kept_for_those_who_come_back():
    over = rules.tick(started(HOST, ANN, now=100.0), now=500.0)[0]
    assert over.phase == rules.FINISHED
    game, events = run(over, Rematch(HOST, "NEW234"), now=501.0)
    assert [e.frame() for e in events] == [{"type": "rematch", "room_id": "NEW234"}]
    assert run(game, Rematch(HOST, "OTHER2"), now=502.0)[1] == []  # the first one holds
    _, events = run(game, Join(ANN, "u2", "c2b"), now=503.0)
    assert of(events, rules.StateSent)[0].state["rematch"] == "NEW234"
    back = rules.game_from_json(rules.game_to_json(game, now=0.0), now=0.0)
    assert back.rematch == "NEW234"
    assert rules.snapshot_changes(game) != rules.snapshot_changes(over)


def test_a_rematch_from_anyone_but_the_host_or_before_the_end_changes_nothing():
    over = rules.tick(started(HOST, ANN, now=100.0), now=500.0)[0]
    playing = started(HOST, ANN, now=100.0)
    for game, cmd in ((over, Rematch(ANN, "NEW234")), (playing, Rematch(HOST, "NEW234"))):
        after, events = run(game, cmd, now=101.0 if game is playing else 501.0)
        assert events == [] and after == game


def test_a_rematch_room_starts_with_the_last_players_seated_and_away():
    game = rules.game_new(room_id="NEW234", host_id=HOST, seconds=10, questions=list(Q),
                          seats=[(HOST, "host"), (ANN, "ann")])
    assert [(p.user_id, p.connected) for p in game.players.values()] == [(HOST, False),
                                                                         (ANN, False)]
    game, events = run(game, Join(ANN, "ann", "c2"), now=1.0)
    assert not of(events, rules.PlayerSeated)  # the seat was hers already
    lobby = of(events, rules.LobbyChanged)[0].frame()["players"]
    assert [(p["user_id"], p["connected"]) for p in lobby] == [(HOST, False), (ANN, True)]


def test_the_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate=20, burst=40)
    assert sum(bucket.take(now=0.0) for _ in range(50)) == 40
    assert sum(bucket.take(now=0.5) for _ in range(50)) == 10


def test_commands_survive_the_trip_through_the_channel_layer():
    import msgpack

    from answer_game.driver import command_decode, command_encode

    commands = [Join(ANN, "ann", "c2", watch=True), Leave("c2"), Start(HOST, "c1"),
                Next(HOST, "c1"), Answer(ANN, "c2", 10, {"odd": [1]}),
                Sync("p1!", (Join(BOB, "u3", "p1!b"),)), Rematch(HOST, "ABC234")]
    for cmd in commands:
        wire = msgpack.unpackb(msgpack.packb(command_encode(cmd)), raw=False)
        assert command_decode(wire) == cmd
