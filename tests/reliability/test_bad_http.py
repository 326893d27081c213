"""Generated HTTP parameters and bodies against every endpoint, SQL injection strings included."""

from __future__ import annotations

import http.client
import json
import random
import time
import unicodedata
from urllib.parse import quote

import pytest

from course_project.config import config_get
from workbook.chapters.client import player_new

from .clients import shared_query
from .conftest import SEED
from .fuzz import WEIRD_NUMBERS, WEIRD_STRINGS, WEIRD_VALUES, has_surrogate

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("live_server")]

REQUESTS = 1500
MAX_BODY = 16 * 1024
MAX_UID = 2**32 - 1
ROOM_ID = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
# Each one, if it ever ran as SQL, would show: a dropped table, a changed count, a 3 s sleep.
SQL = [
    "'; DROP TABLE user; --", "' OR '1'='1", "1; DELETE FROM answer", "admin'--",
    "' AND SLEEP(3) AND '1'='1", "1' UNION SELECT 1,2,3 -- ", "Robert'); DROP TABLE room;--",
    "%' OR 1=1 #", "'||(SELECT version())||'", "\" OR \"\"=\"", "1 OR 1=1", "`; SHOW TABLES; `",
    "x'; UPDATE user SET nickname='p", "'; SELECT SLEEP(3); --", "中文' OR '1'='1", "\\'; --",
    "1)) OR ((1=1", "'/**/OR/**/1=1", "0x27 OR 1=1", "'; TRUNCATE result; --",
]


def q(text: str) -> str:
    """Percent-encoded, every byte (a lone surrogate as the bytes UTF-8 would give it)."""
    return quote(text, safe="", errors="surrogatepass")


def nickname_ok(value: object) -> str | None:
    """What POST /api/players stores for this nickname (1-32 characters after trimming, any
    language; no control or invisible characters), or None if it must refuse it."""
    if not isinstance(value, str):
        return None
    name = unicodedata.normalize("NFC", value.strip())
    if not 1 <= len(name) <= 32:
        return None
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in name):
        return None
    return name


def _number(value: object, low: float, high: float, *, integer: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if integer and not isinstance(value, int):
        return False
    return value == value and abs(value) != float("inf") and low <= value <= high


class Request:
    def __init__(self, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None, expect: tuple[int, str | None] = (0, None),
                 label: str = "", chunked: bool = False) -> None:
        self.method, self.path, self.body = method, path, body
        self.headers, self.expect, self.label = headers or {}, expect, label
        self.chunked = chunked


class HttpFuzz:
    def __init__(self, rng: random.Random, ticket: str, rooms: list[str]) -> None:
        self.rng, self.ticket, self.rooms = rng, ticket, rooms

    def pick(self, items: list):
        return items[self.rng.randrange(len(items))]

    def text(self) -> str:
        r = self.rng.random()
        if r < 0.35:
            return self.pick(SQL)
        if r < 0.7:
            return self.pick(WEIRD_STRINGS)
        return "".join(chr(self.rng.choice([self.rng.randint(0x20, 0x7E),
                                            self.rng.randint(0xA0, 0xFFFF),
                                            self.rng.randint(0, 0x1F)]))
                       for _ in range(self.rng.randint(1, 40)))  # lone surrogates included

    def value(self) -> object:
        r = self.rng.random()
        if r < 0.3:
            return self.pick(WEIRD_NUMBERS)
        if r < 0.5:
            return self.pick(WEIRD_VALUES)
        return self.text()

    def body(self, data: object) -> bytes:
        text = json.dumps(data, ensure_ascii=self.rng.random() < 0.5)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate travels escaped
            return json.dumps(data).encode()

    def broken_body(self) -> tuple[bytes, str]:
        return self.pick([
            (b"", "empty"), (b"{", "truncated"), (b"[" * 5000, "nested past the limit"),
            (b"\xff\xfe\x00", "not UTF-8"), (b'{"nickname": NaN}', "NaN"),
            (b"null", "null"), (b"[1, 2]", "array"), (b'"x"', "string"),
            (b'{"nickname": "' + b"a" * 20000 + b'"}', "over 16 KiB"),
            (b"x" * (3 << 20), "3 MiB"), (b'{"a": ' * 400 + b"1" + b"}" * 400, "deep object"),
            (b"1" * 5000, "a 5000-digit number"),
        ])

    # --- one request of each endpoint, with what the API must answer ---

    def players(self) -> Request:
        if self.rng.random() < 0.25:
            raw, label = self.broken_body()
            return Request("POST", "/api/players", raw, expect=_broken_expect(raw, "nickname"),
                           label=label)
        data = {"nickname": self.value() if self.rng.random() < 0.4 else self.text()}
        if self.rng.random() < 0.2:
            data[self.text()] = self.value()  # extra fields are ignored
        if self.rng.random() < 0.1:
            data.pop("nickname")
        name = nickname_ok(data.get("nickname"))
        expect = (201, None) if name else (400, "bad_nickname")
        if has_surrogate(data):
            expect = (400, "bad_json")
        return Request("POST", "/api/players", self.body(data), expect=expect, label="nickname")

    def user(self) -> Request:
        r = self.rng.random()
        if r < 0.3:
            raw = self.rng.choice(["1", "2", "3", str(10**9), str(MAX_UID), str(MAX_UID + 1), "0",
                                   "-1", "0001", "9" * 5000])  # past int()'s 4300 digits
        elif r < 0.6:
            raw = self.text()
        else:
            raw = str(self.value())
        path = "/api/user?uid=" + q(raw)
        if raw.isascii() and raw.isdigit() and len(raw) <= 10 and 0 < int(raw) <= MAX_UID:
            return Request("GET", path, expect=(0, "known_or_unknown_user"), label="uid")
        return Request("GET", path, expect=(400, "bad_uid"), label="uid")

    def rooms_new(self) -> Request:
        r = self.rng.random()
        headers = {"Authorization": f"Bearer {self.ticket}"}
        if r < 0.15:
            auth = self.pick(["", "Bearer", "Bearer ", "Basic abc", f"bearer {self.ticket}x",
                              f"Bearer {self.ticket[:-3]}", "Bearer qt1.1.a.b",
                              f"Bearer {self.pick(SQL)}", "Bearer " + "q" * 5000])
            headers = {"Authorization": auth} if auth else {}
            scheme, _, token = auth.partition(" ")
            expected_code = "no_ticket" if scheme.lower() != "bearer" or not token.strip() \
                else "bad_ticket"
            body = self.body({"questions": 1, "seconds": 5})
            return Request("POST", "/api/rooms", body, headers,
                           expect=(401, expected_code), label="auth")
        if r < 0.3:
            raw, label = self.broken_body()
            return Request("POST", "/api/rooms", raw, headers,
                           expect=_broken_expect(raw, "room"), label=label)
        data = {"questions": self.value() if self.rng.random() < 0.5 else
                self.rng.randint(-5, 60),
                "seconds": self.value() if self.rng.random() < 0.5 else
                self.rng.choice([0.5, 1, 2.5, 60, 120, 120.0001, 121])}
        if self.rng.random() < 0.15:
            data[self.text()] = 1
        if self.rng.random() < 0.1:
            data.pop(self.pick(["questions", "seconds"]))
        ok = set(data) == {"questions", "seconds"} and \
            _number(data["questions"], 1, 50, integer=True) and \
            _number(data["seconds"], 1, 120, integer=False)
        expect = (201, None) if ok else (400, "bad_field")
        if has_surrogate(data):
            expect = (400, "bad_json")
        return Request("POST", "/api/rooms", self.body(data), headers, expect=expect,
                       label="room params")

    def results(self) -> Request:
        r = self.rng.random()
        if r < 0.3:
            room = self.pick(self.rooms)
            known = True
        elif r < 0.6:
            room = "".join(self.pick(list(ROOM_ID)) for _ in range(self.rng.randint(1, 16)))
            known = room in self.rooms
        else:
            room = self.text()
            known = False
        fmt = self.pick([None, "json", "csv", "xml", "", "CSV", self.text()])
        path = f"/api/rooms/{q(room)}/results"
        if fmt is not None:
            path += "?format=" + q(fmt)
        valid_id = 1 <= len(room) <= 16 and all(c in ROOM_ID for c in room)
        if not valid_id:
            expect = (404, "not_found")
        elif not known:
            expect = (404, "unknown_room")
        elif fmt in (None, "json"):
            expect = (200, None)
        elif fmt == "csv":
            expect = (200, "csv")
        else:
            expect = (400, "bad_format")
        return Request("GET", path, expect=expect, label="results")

    def rematch(self) -> Request:
        """The one known room is in its lobby: no rematch before the game is over (409)."""
        r = self.rng.random()
        if r < 0.5:
            room = self.pick(self.rooms)
        elif r < 0.8:
            room = "".join(self.pick(list(ROOM_ID)) for _ in range(self.rng.randint(1, 16)))
        else:
            room = self.text()
        auth = f"Bearer {self.ticket}" if self.rng.random() < 0.7 else self.pick(
            ["", "Bearer qt1.1.a.b", f"Bearer {self.ticket[:-3]}", f"Bearer {self.pick(SQL)}"])
        headers = {"Authorization": auth} if auth else {}
        valid_id = 1 <= len(room) <= 16 and all(c in ROOM_ID for c in room)
        if not valid_id:
            expect = (404, "not_found")
        elif not auth:
            expect = (401, "no_ticket")
        elif auth != f"Bearer {self.ticket}":
            expect = (401, "bad_ticket")
        elif room not in self.rooms:
            expect = (404, "unknown_room")
        else:
            expect = (409, "wrong_phase")
        return Request("POST", f"/api/rooms/{q(room)}/rematch", None, headers, expect=expect,
                       label="rematch")

    def other(self) -> Request:
        r = self.rng.random()
        if r < 0.4:
            method, path = self.pick([("GET", "/api/players"), ("PUT", "/api/players"),
                                      ("DELETE", "/api/user?uid=1"), ("POST", "/api/health"),
                                      ("GET", "/api/rooms"), ("PATCH", "/api/rooms"),
                                      ("POST", f"/api/rooms/{self.pick(self.rooms)}/results"),
                                      ("GET", f"/api/rooms/{self.pick(self.rooms)}/rematch")])
            return Request(method, path, b"{}", expect=(405, "method_not_allowed"),
                           label="method")
        if r < 0.7:
            path = "/api/" + q(self.text())
            return Request("GET", path, expect=(404, "not_found"), label="unknown path")
        query = "&".join(f"{q(self.text())}={q(str(self.value()))}"
                         for _ in range(self.rng.randint(1, 4)))
        return Request("GET", "/api/health?" + query, expect=(200, None), label="health")

    def next(self) -> Request:
        return self.pick([self.players, self.user, self.rooms_new, self.results, self.rematch,
                          self.other])()


def _broken_expect(raw: bytes, route: str) -> tuple[int, str]:
    if len(raw) > MAX_BODY:
        return 413, "too_large"
    try:
        data = json.loads(raw or b"null")
    except (ValueError, RecursionError):
        return 400, "bad_json"
    if not isinstance(data, dict):
        return 400, "bad_json"
    return 400, "bad_nickname" if route == "nickname" else "bad_field"


def send(conn: http.client.HTTPConnection, req: Request) -> tuple[int, str, bytes, float]:
    headers = {"Content-Type": "application/json",
               **{k: v.encode("utf-8", "surrogatepass") for k, v in req.headers.items()}}
    began = time.monotonic()
    if req.chunked:
        conn.request(req.method, req.path, body=iter([req.body or b""]), headers=headers,
                     encode_chunked=True)
    else:
        conn.request(req.method, req.path, body=req.body, headers=headers)
    reply = conn.getresponse()
    body = reply.read()
    return reply.status, reply.headers.get_content_type(), body, time.monotonic() - began


def test_bad_http_parameters_and_bodies_get_json_errors_and_sql_stays_data(figures):
    """Tried: 1,500 seeded requests over every endpoint: nicknames, uids, room parameters,
    room ids (results, rematch) and formats made of SQL injection strings, unicode, control
    characters, huge and negative numbers, wrong types, extra and missing fields; bodies that are
    not JSON, nested past the recursion limit, over 16 KiB or 3 MiB; missing, malformed, forged
    and truncated Bearer tickets; wrong methods and unknown paths.
    Asserted: each got the documented status and JSON `error` code (never a 500), no request
    took long enough for an injected SLEEP to have run, every nickname came back byte for byte
    as it was stored, the users and rooms tables grew by exactly the 201s, and every table is
    still there."""
    cfg = config_get()
    host = player_new("http-fuzz")
    room = json.loads(_post_room(host["ticket"]))["room_id"]
    users_before = shared_query("SELECT COUNT(*) FROM quiz_study.user")[0][0]
    rooms_before = shared_query("SELECT COUNT(*) FROM quiz_game.room WHERE host_id = %s",
                                (host["user_id"],))[0][0]
    fuzz = HttpFuzz(random.Random(f"{SEED}/http"), host["ticket"], [room])
    conn = http.client.HTTPConnection(cfg.server_host, cfg.server_port, timeout=10)
    wrong, created, rooms_created, slowest, statuses = [], {}, 0, 0.0, {}
    for n in range(REQUESTS):
        req = fuzz.next()
        try:
            status, ctype, body, took = send(conn, req)
        except (http.client.HTTPException, OSError):
            conn.close()  # the server closed after an error reply (3 MiB body): reconnect
            conn = http.client.HTTPConnection(cfg.server_host, cfg.server_port, timeout=10)
            status, ctype, body, took = send(conn, req)
        slowest = max(slowest, took)
        statuses[status] = statuses.get(status, 0) + 1
        code = json.loads(body).get("error") if ctype == "application/json" else None
        want_status, want_code = req.expect
        if want_code == "known_or_unknown_user":
            ok = (status, code) in ((200, None), (404, "unknown_user"))
        elif want_code == "csv":
            ok = status == 200 and ctype == "text/csv"
        else:
            ok = status == want_status and code == want_code
        if status >= 500 or not ok:
            wrong.append(f"#{n} {req.label}: {req.method} {req.path[:120]} "
                         f"{(req.body or b'')[:80]!r} -> {status} {code or body[:80]!r}, "
                         f"expected {want_status} {want_code}")
        if status == 201 and req.path == "/api/players":
            reply = json.loads(body)
            created[reply["user_id"]] = nickname_ok(json.loads(req.body)["nickname"])
            if reply["nickname"] != created[reply["user_id"]]:
                wrong.append(f"nickname came back as {reply['nickname']!r}")
        if status == 201 and req.path == "/api/rooms":
            rooms_created += 1
    conn.close()

    stored = dict(shared_query(
        "SELECT id, nickname FROM quiz_study.user WHERE id BETWEEN %s AND %s",
        (min(created), max(created)))) if created else {}
    wrong += [f"user {uid}: stored {stored.get(uid)!r}, sent {name!r}"
              for uid, name in created.items() if stored.get(uid) != name]
    users_after = shared_query("SELECT COUNT(*) FROM quiz_study.user")[0][0]
    if users_after - users_before < len(created):  # other clients may add users meanwhile
        wrong.append(f"users grew by {users_after - users_before}, {len(created)} were created")
    rooms_after = shared_query("SELECT COUNT(*) FROM quiz_game.room WHERE host_id = %s",
                               (host["user_id"],))[0][0]
    if rooms_after - rooms_before != rooms_created:
        wrong.append(f"rooms of the host grew by {rooms_after - rooms_before}, "
                     f"{rooms_created} were created")
    tables = {t for (t,) in shared_query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema IN (%s, %s)",
        (cfg.study_db, cfg.game_db))}
    if not {"user", "question", "room", "room_question", "player", "answer", "result"} <= tables:
        wrong.append(f"tables now: {sorted(tables)}")
    sql_stored = sum(1 for name in created.values() if name in SQL)
    figures.report("bad http requests", requests=REQUESTS,
                   refusals=sum(v for k, v in statuses.items() if k >= 400),
                   created_users=len(created), sql_strings_stored_verbatim=sql_stored,
                   rooms_created=rooms_created, statuses=statuses,
                   slowest_ms=round(slowest * 1000), mismatches=len(wrong))
    assert not wrong, f"{len(wrong)} problems (seed {SEED}):\n" + "\n".join(wrong[:30])
    assert slowest < 2.5, "a request took long enough for an injected SLEEP(3) to have run"
    assert sql_stored >= 5 and 500 not in statuses


def _post_room(ticket: str) -> bytes:
    cfg = config_get()
    conn = http.client.HTTPConnection(cfg.server_host, cfg.server_port, timeout=10)
    conn.request("POST", "/api/rooms", body=json.dumps({"questions": 2, "seconds": 5}),
                 headers={"Authorization": f"Bearer {ticket}",
                          "Content-Type": "application/json"})
    body = conn.getresponse().read()
    conn.close()
    return body
