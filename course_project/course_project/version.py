"""A fingerprint of this checkout's code, so a server started from older code or from another
clone is never reused."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
_SKIP = {"__pycache__"}
_SUFFIXES = {".py", ".html", ".js", ".css", ".sql"}


@cache
def code_version() -> str:
    # The checkout's path too: a server started from another clone (another .env, another
    # SECRET_KEY) must never be taken for this one's, even with the same code.
    digest = hashlib.sha256(str(PROJECT_DIR).encode() + b"\0")
    for path in sorted(PROJECT_DIR.rglob("*")):
        rel = path.relative_to(PROJECT_DIR)
        if path.suffix in _SUFFIXES and not _SKIP.intersection(rel.parts) and path.is_file():
            digest.update(str(rel).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]
