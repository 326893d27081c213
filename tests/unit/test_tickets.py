import re

import pytest
from django.core import signing

from common.tickets import TicketError, ticket_issue, ticket_verify

TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 7230 token: a valid subprotocol


@pytest.fixture(autouse=True)
def _django(django_ready):
    pass


def test_a_ticket_round_trips_to_its_user_id():
    assert ticket_verify(ticket_issue(user_id=42)) == 42


def test_a_ticket_is_a_valid_websocket_subprotocol_token():
    for uid in (1, 99, 4_294_967_295):
        assert TOKEN.match(ticket_issue(user_id=uid))


def test_a_ticket_with_another_user_id_spliced_in_is_forged():
    ticket = ticket_issue(user_id=7)
    version, uid, rest = ticket.split(".", 2)
    with pytest.raises(TicketError) as err:
        ticket_verify(f"{version}.8.{rest}")
    assert err.value.reason == "forged"


def test_a_ticket_signed_with_another_key_is_forged():
    from django.test import override_settings

    ticket = ticket_issue(user_id=7)
    with override_settings(SECRET_KEY="another-key-" + "x" * 40), pytest.raises(TicketError) as err:
        ticket_verify(ticket)
    assert err.value.reason == "forged"


def test_an_old_ticket_is_expired(monkeypatch):
    real = signing.TimestampSigner.timestamp
    monkeypatch.setattr(
        signing.TimestampSigner,
        "timestamp",
        lambda self: signing.b62_encode(int(signing.b62_decode(real(self))) - 7200),
    )
    ticket = ticket_issue(user_id=5)
    monkeypatch.undo()
    assert ticket_verify(ticket, max_age=3600 * 3) == 5
    with pytest.raises(TicketError) as err:
        ticket_verify(ticket, max_age=3600)
    assert err.value.reason == "expired"


@pytest.mark.parametrize(
    "junk",
    ["", "qt1.", "qt1.5", "qt1.5.abc", "hello", "qt1.x.y.z" * 3, "qt1.5.1abc." + "é" * 30, None, 5],
)
def test_junk_is_malformed_not_a_crash(junk):
    with pytest.raises(TicketError) as err:
        ticket_verify(junk)
    assert err.value.reason == "malformed"


def test_a_truncated_ticket_is_refused():
    ticket = ticket_issue(user_id=3)
    with pytest.raises(TicketError):
        ticket_verify(ticket[:-5])
