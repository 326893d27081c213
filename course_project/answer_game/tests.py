"""The game: the rules driven by hand, and the consumer over the real application."""

from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from answer_game import rules
from answer_game.services import room_create
from common.tickets import ticket_issue

ORIGIN = (b"origin", b"http://127.0.0.1")  # a page of this server (the origin check)


def test_a_right_answer_scores_1000_at_once_and_500_at_the_deadline():
    assert rules.points_for(correct=True, elapsed=0, seconds=10) == 1000
    assert rules.points_for(correct=True, elapsed=10, seconds=10) == 500
    assert rules.points_for(correct=False, elapsed=0, seconds=10) == 0


def test_a_second_answer_to_the_same_question_is_refused():
    question = rules.Question(question_id=7, text="1 + 1?", choices=["1", "2"], answer=1)
    game = rules.game_new(room_id="r1", host_id=1, seconds=10, questions=[question])
    game, _ = rules.apply(game, rules.Join(1, "Ann", "c1"), now=0)
    game, _ = rules.apply(game, rules.Start(1, "c1"), now=0)
    game, events = rules.apply(game, rules.Answer(1, "c1", 7, 1), now=1)
    assert any(isinstance(event, rules.AnswerAccepted) for event in events)
    game, events = rules.apply(game, rules.Answer(1, "c1", 7, 0), now=2)
    assert [e.code for e in events if isinstance(e, rules.Rejected)] == ["duplicate_answer"]


def seat(app, room_id, user_id, ticket):
    return WebsocketCommunicator(app, f"/ws/game/controller/{room_id}/{user_id}",
                                 headers=[ORIGIN], subprotocols=[ticket])


async def test_a_seat_is_only_for_its_tickets_user(app):
    room_id = await room_create(host_id=1, questions=1, seconds=5)
    ticket = ticket_issue(user_id=2)
    connected, _ = await seat(app, room_id, 1, ticket).connect()
    assert not connected
    own = seat(app, room_id, 2, ticket)
    connected, _ = await own.connect()
    assert connected
    frames = [await own.receive_json_from(5) for _ in range(2)]
    assert "state" in [frame["type"] for frame in frames]
    await own.disconnect()


async def test_the_results_of_an_unknown_room_are_a_json_404(app):
    reply = await AsyncClient().get("/api/rooms/NOSUCHRM/results")
    assert reply.status_code == 404
    assert reply.json()["error"] == "unknown_room"
