"""Debian's Chromium for the browser test (Playwright's own browser download cannot work here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .errors import SetupError, step

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str | None:
    return (
        os.environ.get("QUIZ_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


def chromium_ensure() -> str:
    found = chromium_path()
    if found:
        step("browser", f"chromium at {found}")
        return found
    if Path("/etc/debian_version").exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        step("browser", "installing Debian's chromium with apt-get (one time)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
            if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
                raise SetupError(f"'{' '.join(cmd)}' failed", "apt-get install -y chromium")
        found = chromium_path()
    if not found:
        raise SetupError(
            "no chromium for the browser test",
            "apt-get install chromium (Debian/Ubuntu) or set QUIZ_CHROMIUM=/path",
        )
    return found
