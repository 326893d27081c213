"""JSON in, JSON out, and JSON errors: `{"error": code, "message": text}` with a 4xx status."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

MAX_BODY_BYTES = 16 * 1024


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def json_response(data: Any, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, safe=False, json_dumps_params={"ensure_ascii": False})


def json_error(status: int, code: str, message: str) -> JsonResponse:
    return json_response({"error": code, "message": message}, status=status)


def json_body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_json", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the request body must be a JSON object")
    return data


def bearer_token(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "no_ticket", "send the ticket as 'Authorization: Bearer <ticket>'")
    return token.strip()


View = Callable[..., Awaitable[HttpResponse]]


def api_view(*methods: str) -> Callable[[View], View]:
    """An async JSON view: method check, ApiError -> JSON error. Tickets, not cookies,
    authenticate these endpoints, so CSRF (a cookie attack) does not apply: csrf_exempt."""

    def wrap(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        async def inner(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in methods:
                return json_error(
                    405, "method_not_allowed", f"use {' or '.join(methods)} on {request.path}"
                )
            try:
                return await view(request, *args, **kwargs)
            except ApiError as exc:
                return json_error(exc.status, exc.code, exc.message)

        return inner

    return wrap
