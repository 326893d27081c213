from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from common.http import ApiError, api_view, json_body, json_response

from .selectors import user_get
from .services import NicknameError, player_create

MAX_UID = 2**32 - 1


@api_view("GET")
async def user_detail(request: HttpRequest) -> HttpResponse:
    """GET /api/user?uid=<int>: the user's row; 400 for a malformed uid, 404 for an unknown one."""
    raw = request.GET.get("uid", "")
    # len() first: int() of a 5000-digit string raises (Python's int/str conversion limit).
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or not 0 < int(raw) <= MAX_UID:
        raise ApiError(400, "bad_uid", "uid must be a positive integer")
    user = await user_get(user_id=int(raw))
    if user is None:
        raise ApiError(404, "unknown_user", f"no user with id {int(raw)}")
    return json_response(user)


@api_view("POST")
async def player_create_view(request: HttpRequest) -> HttpResponse:
    body = json_body(request)
    try:
        player = await player_create(nickname=body.get("nickname"))
    except NicknameError as exc:
        raise ApiError(400, "bad_nickname", str(exc)) from None
    return json_response(player, status=201)
