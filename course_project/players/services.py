from __future__ import annotations

import unicodedata

from common.dbexecute import DBExecute
from common.tickets import ticket_issue

NICKNAME_MAX = 32


class NicknameError(ValueError):
    pass


def nickname_clean(value: object) -> str:
    """1-32 characters after trimming, any script; no control or format characters."""
    if not isinstance(value, str):
        raise NicknameError("nickname must be a string")
    name = unicodedata.normalize("NFC", value.strip())
    if not 1 <= len(name) <= NICKNAME_MAX:
        raise NicknameError(f"nickname must be 1-{NICKNAME_MAX} characters after trimming")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in name):
        raise NicknameError("nickname must not contain control or invisible characters")
    return name


async def player_create(*, nickname: str) -> dict:
    name = nickname_clean(nickname)
    done = await DBExecute("INSERT INTO user (nickname) VALUES (%s)", (name,)).execute()
    return {
        "user_id": done.lastrowid,
        "nickname": name,
        "ticket": ticket_issue(user_id=done.lastrowid),
    }
