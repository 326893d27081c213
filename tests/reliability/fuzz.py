"""Generated websocket frames, and for each the outcome that the README's "Wire protocol" promises.

    gen = FrameGen(random.Random(seed))
    frame = gen.game(view)            # a Frame: raw text or bytes, and a label
    expected = game_expect(frame, view)   # "ack", "close:1009" or "error:<code>"

The oracle is evaluated with the view the client has when the reply arrives: the driver sends
its replies and broadcasts in the order it applies them, so the phase broadcasts received before
a reply are the ones the driver had applied when it judged the frame.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

MAX_FRAME = 4096  # settings.WS_MAX_FRAME_BYTES
CHAT_MAX_CHARS = 1000

WEIRD_STRINGS = [
    "", " ", "\t\n", "\x00", "\x07\x1b[31m", "\u200b", "\u202eevil", "🙂", "👩🏽‍🚀", "中文",
    "答案", "ملاحظة", "'", '"', "\\", "%s%s%n", "{{7*7}}", "<script>alert(1)</script>",
    "'; DROP TABLE answer; --", "1 OR 1=1", "\" OR \"\"=\"", "answer\x00", "ANSWER", "Answer",
    "start ", " next", "null", "undefined", "NaN", "💥" * 50, "x" * 300,
]
WEIRD_NUMBERS: list[Any] = [
    0, -1, 1, 2, 3, 4, 5, 255, 256, -2**31, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63,
    2**64, -2**63 - 1, 10**100, -10**100, 10**1000, 1.0, 0.5, -0.0, 1e308, -1e308, 1e-300,
    float("nan"), float("inf"), float("-inf"),
]
WEIRD_VALUES: list[Any] = [None, True, False, [], {}, [1], [0, 1], {"a": 1}, {"question_id": 1},
                           "1", "0", "-1", "1.0", " 1", "one", [[[[]]]]]


@dataclass
class Frame:
    raw: str | bytes
    label: str
    text: bool = True  # a text frame (False: binary)

    @property
    def size(self) -> int:
        return len(self.raw.encode("utf-8")) if isinstance(self.raw, str) else len(self.raw)


@dataclass
class View:
    """What one game client knows, from the frames it received."""

    user_id: int
    host: bool
    player: bool = True
    phase: str = "lobby"
    question_id: int | None = None
    choices: int = 4
    answered: set[int] = field(default_factory=set)

    def apply(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "state":
            self.phase = frame["phase"]
            if "question" in frame:
                self.question_id = frame["question"]["question_id"]
                self.choices = len(frame["question"]["choices"])
            if frame.get("answered"):
                self.answered.add(self.question_id)
            self.player = frame["you"]["player"]
        elif kind == "question":
            self.phase, self.question_id = "question", frame["question_id"]
            self.choices = len(frame["choices"])
        elif kind == "reveal":
            self.phase = "reveal"
        elif kind == "finished":
            self.phase = "finished"
        elif kind == "answer_ack":
            self.answered.add(frame["question_id"])


def _dumps(value: Any, rng: random.Random) -> str:
    """JSON text, with non-ASCII characters raw or escaped (a lone surrogate can only travel
    escaped: raw, it is not UTF-8)."""
    text = json.dumps(value, ensure_ascii=rng.random() < 0.5)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value)
    return text


def has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in item):
            return True
        if isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse(frame: Frame) -> tuple[str | None, Any]:
    """("error:<code>" or "close:<code>", None) for what the consumer refuses itself; else
    (None, the JSON object the consumer hands on)."""
    if frame.size > MAX_FRAME:
        return "close:1009", None
    if not frame.text:
        return "error:bad_json", None
    try:
        data = json.loads(frame.raw)
    except (ValueError, RecursionError):
        return "error:bad_json", None
    if not isinstance(data, dict) or has_surrogate(data):
        return "error:bad_json", None
    return None, data


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def game_expect(frame: Frame, view: View) -> str:
    """The reply the game promises for this frame, judged in `view`'s phase."""
    refused, data = parse(frame)
    if refused:
        return refused
    kind = data.get("type")
    if not isinstance(kind, str):
        return "error:bad_field"
    if kind not in ("start", "next", "answer"):
        return "error:unknown_type"
    if kind == "start":
        if not view.host:
            return "error:not_host"
        return "start" if view.phase == "lobby" else "error:wrong_phase"
    if kind == "next":
        if not view.host:
            return "error:not_host"
        return "next" if view.phase == "reveal" else "error:wrong_phase"
    qid, choice = data.get("question_id"), data.get("choice")
    if _is_int(qid) and qid in view.answered:
        return "error:duplicate_answer"  # told first, in any phase
    if view.phase not in ("question", "reveal"):
        return "error:wrong_phase"
    if not _is_int(qid):
        return "error:bad_field"
    if qid != view.question_id:
        return "error:unknown_question"
    if not _is_int(choice) or not 0 <= choice < view.choices:
        return "error:bad_choice"
    if not view.player:
        return "error:not_player"
    if view.phase != "question":
        return "error:too_late"
    return "ack"


def chat_expect(frame: Frame) -> str:
    refused, data = parse(frame)
    if refused:
        return refused
    message = data.get("message")
    if not isinstance(message, str) or not message.strip() or len(message) > CHAT_MAX_CHARS:
        return "error:bad_field"
    return "message"


class FrameGen:
    """Bad (and some good) frames, drawn from one seeded random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, items: list) -> Any:
        return items[self.rng.randrange(len(items))]

    def string(self) -> str:
        r = self.rng.random()
        if r < 0.5:
            return self.pick(WEIRD_STRINGS)
        if r < 0.6:
            return chr(self.rng.choice([0xD800, 0xDBFF, 0xDC00, 0xDFFF]))  # a lone surrogate
        length = self.rng.randint(1, 40)
        return "".join(chr(self.pick([self.rng.randint(0, 0x1F), self.rng.randint(0x20, 0x7E),
                                      self.rng.randint(0xA0, 0x2FFF),
                                      self.rng.randint(0x1F300, 0x1FAFF)]))
                       for _ in range(length))

    def value(self) -> Any:
        r = self.rng.random()
        if r < 0.4:
            return self.pick(WEIRD_NUMBERS)
        if r < 0.7:
            return self.pick(WEIRD_VALUES)
        return self.string()

    def extra(self, data: dict) -> dict:
        for _ in range(self.rng.choice([0, 0, 1, 2, 5])):
            data[self.string() or "k"] = self.value()
        return data

    # --- shapes that are not about one route ---

    def garbage(self) -> Frame:
        r = self.rng.random()
        if r < 0.15:
            return Frame(self.pick(["", " ", "{", "}", "[", "nul", "tru", "{'type': 'start'}",
                                    '{"type": "start",}', '{"type" "start"}', "NaN", "\x00",
                                    '"just a string"', "42", "[1, 2]", "null", "true"]),
                         "not an object")
        if r < 0.3:
            raw = bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(1, 64)))
            return Frame(raw.decode("latin-1"), "random text")
        if r < 0.45:
            good = json.dumps({"type": "answer", "question_id": 1, "choice": 0})
            return Frame(good[: self.rng.randint(0, len(good) - 1)], "truncated")
        if r < 0.6:
            if self.rng.random() < 0.5:  # arrays nested past Python's recursion limit
                depth = self.rng.choice([50, 999, 1001, 2000])
                return Frame("[" * depth + "]" * depth, f"nested arrays {depth}")
            depth = self.rng.choice([10, 300, 600])
            return Frame('{"a":' * depth + "1" + "}" * depth, f"nested objects {depth}")
        if r < 0.75:
            payload = self.pick([b"", b"\x00\xff", json.dumps({"type": "start"}).encode(),
                                 bytes(range(256))])
            return Frame(payload, "binary", text=False)
        if r < 0.9:
            literal = self.pick(["NaN", "Infinity", "-Infinity", "1e400", "-1e400",
                                 "9" * 500, "-" + "9" * 4000, "0.000001e-999", "-0", "1E2"])
            return Frame('{"type": "answer", "question_id": ' + literal + ', "choice": 0}',
                         "number literal")
        value = self.pick(WEIRD_VALUES + WEIRD_NUMBERS[:5])
        return Frame(_dumps(value, self.rng), "json non-object")

    # --- the game ---

    def game(self, view: View) -> Frame:
        """A frame for the game route (under the size limit); never a valid start or next."""
        while True:
            frame = self._game(view)
            if frame.size <= MAX_FRAME:
                return frame

    def _game(self, view: View) -> Frame:
        r = self.rng.random()
        if r < 0.2:
            return self.garbage()
        if r < 0.3:
            data = self.extra({"type": self.value() if self.rng.random() < 0.5 else None})
            if self.rng.random() < 0.3:
                data.pop("type", None)
            return Frame(_dumps(data, self.rng), "type not a string")
        if r < 0.4:
            return Frame(_dumps(self.extra({"type": self.string()}), self.rng), "unknown type")
        if r < 0.5:
            # The host's start is refused after the lobby, its next before the first question
            # and after the last (phases only move forward); a non-host's always.
            kind = self.pick(["start", "next"])
            if view.host:
                kind = {"lobby": "next", "finished": kind}.get(view.phase, "start")
            return Frame(_dumps(self.extra({"type": kind}), self.rng), f"{kind} command")
        return self.answer(view)

    def answer(self, view: View) -> Frame:
        qid = view.question_id if view.question_id is not None else 1
        r = self.rng.random()
        data: dict[str, Any] = {"type": "answer"}
        if r < 0.2:
            data["question_id"], data["choice"] = self.value(), self.rng.randrange(4)
            label = "answer, odd question_id"
        elif r < 0.35:
            data["question_id"] = qid + self.pick([1, -1, 1000, -qid, 2**32])
            data["choice"] = self.rng.randrange(4)
            label = "answer, another question"
        elif r < 0.6:
            data["question_id"], data["choice"] = qid, self.value()
            label = "answer, odd choice"
        elif r < 0.7:
            if self.rng.random() < 0.5:
                data["question_id"] = qid
            else:
                data["choice"] = 0
            label = "answer, missing field"
        else:
            data["question_id"], data["choice"] = qid, self.rng.randrange(view.choices)
            label = "answer, well formed"
        return Frame(_dumps(self.extra(data), self.rng), label)

    # --- the chat ---

    def chat(self) -> Frame:
        """A frame for the chat route, under the size limit."""
        while True:
            frame = self._chat()
            if frame.size <= MAX_FRAME:
                return frame

    def _chat(self) -> Frame:
        r = self.rng.random()
        if r < 0.25:
            return self.garbage()
        if r < 0.55:
            message = self.value() if self.rng.random() < 0.5 else self.string()
            if isinstance(message, str) and len(message) < 200 and self.rng.random() < 0.2:
                message = message * self.rng.choice([10, 50, 100])
            data = self.extra({"message": message})
            if self.rng.random() < 0.1:
                data.pop("message", None)
            return Frame(_dumps(data, self.rng), "odd message")
        text = self.string().strip() or "hi"
        return Frame(_dumps(self.extra({"message": f"{text} #{self.rng.randrange(10**6)}"}),
                            self.rng), "message")

