"""JSON in, JSON out, and JSON errors: `{"error": code, "message": text}` with a 4xx status, or
503 when MySQL or Redis cannot be reached."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from redis.exceptions import RedisError

from .dbexecute import DB_OUTAGE_ERRORS

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
# MySQL or Redis away: the request may succeed in a moment (503), it is not the client's fault.
OUTAGE_ERRORS = (*DB_OUTAGE_ERRORS, RedisError)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def json_response(data: Any, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, safe=False, json_dumps_params={"ensure_ascii": False})


def json_error(status: int, code: str, message: str) -> JsonResponse:
    return json_response({"error": code, "message": message}, status=status)


def json_body(request: HttpRequest) -> dict[str, Any]:
    too_large = ApiError(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes")
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
        raise too_large
    try:
        body = request.body  # Django refuses past DATA_UPLOAD_MAX_MEMORY_SIZE (chunked bodies)
    except RequestDataTooBig:
        raise too_large from None
    if len(body) > MAX_BODY_BYTES:
        raise too_large
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):  # "[[[[..." past the depth limit
        raise ApiError(400, "bad_json", "the request body is not valid JSON") from None
    if b"\\u" in body and not json_encodable(data):
        raise ApiError(400, "bad_json", "the body has an unpaired surrogate (\\ud800-\\udfff)")
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the request body must be a JSON object")
    return data


def json_encodable(data: Any) -> bool:
    """False if a string in the data holds a lone surrogate ("\\ud800" is valid JSON, but no
    character: echoed back, or stored, it fails as UTF-8 far from where it came in)."""
    stack = [data]  # no recursion: the data may be nested 999 deep
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return False
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


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
            except OUTAGE_ERRORS as exc:
                log.warning("%s %s: %s (%s)", request.method, request.path, type(exc).__name__, exc)
                return json_error(503, "unavailable", "a backing service is unreachable; retry")

        return inner

    return wrap
