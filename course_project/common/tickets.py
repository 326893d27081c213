"""Tickets: signed, expiring proofs of a user id that travel as the websocket subprotocol.

A ticket looks like `qt1.42.1u3x9K.Q0f...`: version, user id, timestamp, HMAC signature (Django's
TimestampSigner keyed by SECRET_KEY). It is made only of RFC 7230 token characters, so a browser
can offer it in `new WebSocket(url, [ticket])`; it can be reused for reconnects until it expires.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core import signing

PREFIX = "qt1."
_SALT = "quiz-battle.ticket.v1"
_SHAPE = re.compile(r"^qt1\.[0-9]{1,10}\.[0-9A-Za-z]{1,12}\.[A-Za-z0-9_\-]{20,100}$")


class TicketError(Exception):
    """Why a ticket was refused: `malformed`, `forged` or `expired`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _signer() -> signing.TimestampSigner:
    # ":" (Django's default separator) is not allowed in a subprotocol token; "." is.
    return signing.TimestampSigner(salt=_SALT, sep=".")


def ticket_issue(*, user_id: int) -> str:
    return PREFIX + _signer().sign(str(int(user_id)))


def ticket_verify(ticket: str, *, max_age: int | None = None) -> int:
    """The user id the ticket was issued to, or TicketError."""
    if not isinstance(ticket, str) or not _SHAPE.match(ticket):
        raise TicketError("malformed")
    age = settings.TICKET_MAX_AGE if max_age is None else max_age
    try:
        value = _signer().unsign(ticket[len(PREFIX) :], max_age=age)
    except signing.SignatureExpired:
        raise TicketError("expired") from None
    except signing.BadSignature:
        raise TicketError("forged") from None
    return int(value)
