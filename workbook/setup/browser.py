"""Debian's Chromium for the browser test (Playwright's own browser download cannot work here)."""

from __future__ import annotations

import os
import shutil
import subprocess

from workbook.errors import SetupError, step
from workbook.setup.debian import debian_install, debian_root

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


# Chinese nicknames and questions render as empty boxes without a CJK font; this one is small.
CJK_FONT_PACKAGE = "fonts-wqy-microhei"


def cjk_font_present() -> bool:
    if not shutil.which("fc-list"):
        return False
    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True)
    return bool(listed.stdout.strip())


def cjk_font_ensure() -> bool:
    """A CJK font for readable screenshots: installed with apt-get as root on Debian (like
    Chromium), else a hint. True if one is there afterwards."""
    if cjk_font_present():
        return True
    if debian_root():
        step("browser", f"installing Debian's {CJK_FONT_PACKAGE} with apt-get (one time)")
        debian_install(CJK_FONT_PACKAGE)
    if not cjk_font_present():
        step("browser", f"no CJK font: Chinese text shows as boxes (apt-get install "
                        f"{CJK_FONT_PACKAGE})")
        return False
    return True


def chromium_ensure() -> str:
    found = chromium_path()
    if found:
        step("browser", f"chromium at {found}")
        cjk_font_ensure()
        return found
    if debian_root():
        step("browser", "installing Debian's chromium with apt-get (one time)")
        if not debian_install("chromium", recommends=True):
            raise SetupError("'apt-get install chromium' failed", "apt-get install -y chromium")
        found = chromium_path()
    if found:
        cjk_font_ensure()
    if not found:
        raise SetupError(
            "no chromium for the browser test",
            "apt-get install chromium (Debian/Ubuntu) or set QUIZ_CHROMIUM=/path",
        )
    return found
