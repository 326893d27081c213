"""What the browser tests share: Debian's Chromium, or a skip (a failure on CI) without it."""

from __future__ import annotations

import os

import pytest

from workbook.setup.browser import chromium_path


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        message = "chromium is not installed (apt-get install chromium, or make test)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
