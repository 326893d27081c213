from __future__ import annotations

import csv
import io

import qrcode
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from qrcode.image.svg import SvgPathImage

from common.http import ApiError, api_view, bearer_token, json_body, json_response
from common.tickets import TicketError, ticket_verify

from . import rules
from .driver import hub
from .selectors import results_get
from .services import (
    RematchRefused,
    RoomNotFound,
    RoomParamsError,
    room_create,
    room_params_clean,
    room_rematch,
)

ANSWER_COLUMNS = ["room_id", "position", "question_id", "user_id", "nickname", "choice",
                  "correct", "elapsed_ms", "points"]


@api_view("POST")
async def room_create_view(request: HttpRequest) -> HttpResponse:
    """POST /api/rooms {"questions": 1-50, "seconds": 1-120} with a Bearer ticket: the caller
    hosts the new room."""
    try:
        host_id = ticket_verify(bearer_token(request))
    except TicketError as exc:
        raise ApiError(401, "bad_ticket", f"the ticket is {exc.reason}") from None
    try:
        questions, seconds = room_params_clean(json_body(request))
        room_id = await room_create(host_id=host_id, questions=questions, seconds=seconds)
    except RoomParamsError as exc:
        raise ApiError(400, "bad_field", str(exc)) from None
    return json_response({"room_id": room_id}, status=201)


@api_view("POST")
async def room_rematch_view(request: HttpRequest, room_id: str) -> HttpResponse:
    """POST /api/rooms/<id>/rematch with the host's Bearer ticket, once the game is over: 201
    {"room_id": new} with every player of the game seated, and a `rematch` frame to the room's
    sockets; asked again, 200 with the same room."""
    try:
        host_id = ticket_verify(bearer_token(request))
    except TicketError as exc:
        raise ApiError(401, "bad_ticket", f"the ticket is {exc.reason}") from None
    try:
        new_id, made = await room_rematch(room_id=room_id, host_id=host_id)
    except RoomNotFound:
        raise ApiError(404, "unknown_room", f"no room {room_id!r}") from None
    except RematchRefused as exc:
        raise ApiError(403 if exc.code == "not_host" else 409, exc.code, str(exc)) from None
    # Every call tells the room (the rules ignore a repeat): a retry mends a lost notice.
    await hub.command(room_id=room_id, cmd=rules.Rematch(host_id, new_id))
    return json_response({"room_id": new_id}, status=201 if made else 200)


@api_view("GET")
async def room_results_view(request: HttpRequest, room_id: str) -> HttpResponse:
    """GET /api/rooms/<id>/results: leaderboard and every accepted answer; ?format=csv gives the
    answers as CSV (one row per accepted answer)."""
    results = await results_get(room_id=room_id)
    if results is None:
        raise ApiError(404, "unknown_room", f"no room {room_id!r}")
    fmt = request.GET.get("format", "json")
    if fmt == "json":
        return json_response(results)
    if fmt != "csv":
        raise ApiError(400, "bad_format", "format must be json or csv")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ANSWER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in results["answers"]:
        writer.writerow({"room_id": room_id, **{k: row[k] for k in ANSWER_COLUMNS[1:]},
                         "correct": int(row["correct"])})
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="quiz-{room_id}-answers.csv"'
    return response


async def play_page(request: HttpRequest) -> HttpResponse:
    """The player's page: nickname, create or join a room, play."""
    return render(request, "answer_game/play.html")


def join_qr_svg(url: str) -> str:
    image = qrcode.make(url, image_factory=SvgPathImage, box_size=10, border=2)
    return image.to_string(encoding="unicode")


async def screen_page(request: HttpRequest, room_id: str) -> HttpResponse:
    """The instructor's big screen for one room: it connects as a watcher (not a player) with the
    host's ticket, shows the join link as a QR code, the question, answer counts, scores."""
    join_url = request.build_absolute_uri(f"/play?room={room_id}")
    return render(request, "answer_game/screen.html",
                  {"room_id": room_id, "home_url": request.build_absolute_uri("/"),
                   "join_url": join_url, "join_qr": join_qr_svg(join_url)})
