"""Three people in three browsers (Debian's headless Chromium, driven by Playwright) play a game."""

from __future__ import annotations

import json
import os

import pytest

from course_project.config import REPO_ROOT, config_get
from workbook.browser import CHROMIUM_ARGS, chromium_path
from workbook.client import http

pytestmark = [pytest.mark.browser, pytest.mark.live,
              pytest.mark.usefixtures("live_server", "django_ready")]

BANK = json.loads((REPO_ROOT / "data" / "questions.json").read_text(encoding="utf-8"))
ANSWER_BY_TEXT = {q["text"]: q["answer"] for q in BANK}
VISIBLE = ":not([hidden])"


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        message = "chromium is not installed (apt-get install chromium, or make test)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


async def register(page, base: str, nickname: str, url: str = "/") -> None:
    await page.goto(base + url)
    await page.fill("#nickname", nickname)
    await page.click("#btn-register")


async def answer(page, *, correct: bool) -> None:
    await page.wait_for_selector("#view-question" + VISIBLE)
    text = await page.text_content("#q-text")
    right = ANSWER_BY_TEXT[text]
    await page.click(f"[data-testid=choice-{right if correct else (right + 1) % 4}]")
    await page.wait_for_function(
        "document.getElementById('ack-status').textContent === 'Answer received'")


async def test_three_players_in_three_browsers_play_a_full_game(chromium):
    from playwright.async_api import async_playwright

    base = config_get().server_url
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                           headless=True)
        try:
            ada, bob, cy = [await (await browser.new_context()).new_page() for _ in range(3)]
            await register(ada, base, "Ada")
            await ada.fill("#questions-input", "2")
            await ada.fill("#seconds-input", "20")
            await ada.click("#btn-create")
            await ada.wait_for_selector("#view-lobby" + VISIBLE)
            room_id = await ada.text_content("#room-id")
            assert f"room={room_id}" in ada.url
            await register(bob, base, "Bob", f"/play?room={room_id}")
            await register(cy, base, "崔", f"/play?room={room_id}")
            await ada.wait_for_selector("[data-testid=lobby-player] >> nth=2")
            assert await bob.is_hidden("#btn-start")
            await ada.click("#btn-start")

            # Question 1: all three answer, so it closes at once (20 s would be long to wait).
            for page, correct in ((ada, True), (bob, False), (cy, True)):
                await answer(page, correct=correct)
            for page in (ada, bob, cy):
                await page.wait_for_selector("#view-reveal" + VISIBLE)
            assert await bob.text_content("#reveal-points") == "0"
            assert int(await ada.text_content("#reveal-points")) >= 500

            # Bob's connection drops; the page reconnects by itself and gets the state back.
            await ada.click("#btn-next")
            await bob.evaluate("window.quizPlay.socket.ws.close()")
            status = "document.getElementById('conn-status').textContent === '{}'"
            await bob.wait_for_function(status.format("reconnecting"))
            await bob.wait_for_function(status.format("online"))
            await bob.wait_for_selector("#view-question" + VISIBLE)
            for page, correct in ((ada, True), (bob, False), (cy, False)):
                await answer(page, correct=correct)

            boards = []
            for page in (ada, bob, cy):
                await page.wait_for_selector("#view-finished" + VISIBLE)
                rows = await page.locator("[data-testid=leader-row]").all()
                boards.append([(await r.locator(".name").text_content(),
                                int(await r.locator(".score").text_content())) for r in rows])
            await ada.screenshot(path=str(REPO_ROOT / ".run" / "browser-finished.png"))
        finally:
            await browser.close()

    assert boards[0] == boards[1] == boards[2]
    assert [name for name, _ in boards[0]] == ["Ada", "崔", "Bob"]
    assert boards[0][0][1] > boards[0][1][1] >= 500 and boards[0][2][1] == 0
    results = http("GET", f"/api/rooms/{room_id}/results")
    assert [(r["nickname"], r["score"]) for r in results.body["leaderboard"]] == boards[0]
    assert len(results.body["answers"]) == 6
