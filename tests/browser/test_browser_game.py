"""Three people in three browsers (Debian's headless Chromium, driven by Playwright) play a game."""

from __future__ import annotations

import json
import re

import pytest

from answer_game.services import ROOM_CODE_ALPHABET, ROOM_CODE_LENGTH
from course_project.config import config_get
from workbook.chapters.client import http
from workbook.paths import REPO_ROOT
from workbook.setup.browser import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.live,
              pytest.mark.usefixtures("live_server", "django_ready")]

BANK = json.loads((REPO_ROOT / "data" / "questions.json").read_text(encoding="utf-8"))
ANSWER_BY_TEXT = {q["text"]: q["answer"] for q in BANK}
VISIBLE = ":not([hidden])"
ROOM_CODE = f"[{ROOM_CODE_ALPHABET}]{{{ROOM_CODE_LENGTH}}}"


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


PHONE = {"width": 390, "height": 844}
PROJECTOR = {"width": 1920, "height": 1080}
LINE_PX = 30  # one line of the page's 17 px text (line-height 1.45), with room to spare


async def phone_shot(page, phase: str) -> None:
    await page.screenshot(path=str(REPO_ROOT / ".run" / f"browser-phone-{phase}.png"))


async def phone_check_question(page) -> None:
    """On a 390 px wide screen: the header's parts on one line each, choices labelled A-D."""
    await phone_shot(page, "question")
    card = await page.locator("#view-question").bounding_box()
    for part in ("#q-index", "#countdown"):
        box = await page.locator(part).bounding_box()
        assert box and box["height"] < LINE_PX, f"{part} wraps on a phone: {box}"
        assert box["x"] + box["width"] <= card["x"] + card["width"], f"{part} leaves the card"
    letters = [await page.text_content(f"[data-testid=choice-{i}] .letter") for i in range(4)]
    assert letters == ["A", "B", "C", "D"]


async def phone_check_lobby(page) -> None:
    """The code and the join link with its Copy button fit a 390 px wide screen."""
    await phone_shot(page, "lobby")
    card = await page.locator("#view-lobby").bounding_box()
    for part in ("#share-code", "#join-url", "#btn-copy"):
        box = await page.locator(part).bounding_box()
        assert box and box["x"] + box["width"] <= card["x"] + card["width"], f"{part} overflows"
    assert (await page.locator("#btn-copy").bounding_box())["height"] < 2 * LINE_PX


async def phone_check_reveal(page) -> None:
    """The reveal shows the right choice and yours with their letters, and no empty rank column."""
    await phone_shot(page, "reveal")
    assert (await page.text_content("#reveal-correct"))[:2] in ("A:", "B:", "C:", "D:")
    assert await page.is_visible("#reveal-mine")
    assert (await page.text_content("#reveal-mine-choice"))[:2] in ("A:", "B:", "C:", "D:")
    ranks = page.locator("#scores .rank")
    assert await ranks.count() == 3 and not any(
        [await ranks.nth(i).is_visible() for i in range(3)])


async def test_three_players_in_three_browsers_play_a_full_game(chromium):
    from playwright.async_api import async_playwright

    base = config_get().server_url
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                           headless=True)
        try:
            # Ada may use the clipboard: her "Copy" button is checked below.
            ada = await (await browser.new_context(
                permissions=["clipboard-read", "clipboard-write"])).new_page()
            bob = await (await browser.new_context()).new_page()
            cy = await (await browser.new_context(viewport=PHONE)).new_page()  # on a phone
            await register(ada, base, "Ada")
            await ada.fill("#questions-input", "2")
            await ada.fill("#seconds-input", "20")
            await ada.click("#btn-create")
            await ada.wait_for_selector("#view-lobby" + VISIBLE)
            room_id = await ada.text_content("#room-id")
            assert re.fullmatch(ROOM_CODE, room_id) and f"room={room_id}" in ada.url
            join_url = f"{base}/play?room={room_id}"
            assert await ada.text_content("#share-code") == room_id
            assert await ada.input_value("#join-url") == join_url
            await ada.click("#btn-copy")
            await ada.wait_for_function("document.getElementById('btn-copy').textContent "
                                        "=== 'Copied'")
            assert await ada.evaluate("navigator.clipboard.readText()") == join_url

            # Bob types the code as read off the projector: lower case, with a space.
            await register(bob, base, "Bob")
            await bob.fill("#room-input", f" {room_id[:3].lower()} {room_id[3:].lower()}")
            await bob.click("#btn-join")
            await bob.wait_for_selector("#view-lobby" + VISIBLE)
            assert await bob.text_content("#room-id") == room_id
            await register(cy, base, "崔", f"/play?room={room_id}")
            await ada.wait_for_selector("[data-testid=lobby-player] >> nth=2")
            await cy.wait_for_selector("#view-lobby" + VISIBLE)
            await phone_check_lobby(cy)
            assert await bob.is_hidden("#btn-start")
            await ada.click("#btn-start")

            # Question 1: all three answer, so it closes at once (20 s would be long to wait).
            await cy.wait_for_selector("#view-question" + VISIBLE)
            await phone_check_question(cy)
            for page, correct in ((ada, True), (bob, False), (cy, True)):
                await answer(page, correct=correct)
            for page in (ada, bob, cy):
                await page.wait_for_selector("#view-reveal" + VISIBLE)
            await phone_check_reveal(cy)
            assert await bob.text_content("#reveal-points") == "0"
            assert int(await ada.text_content("#reveal-points")) >= 500

            # Question 2: Bob's connection drops; the page reconnects by itself and gets the
            # state back. Then, with the two others answered, he reloads the page: the question
            # stays open for him (the seat's grace period), and he answers once he is back.
            await ada.click("#btn-next")
            await bob.evaluate("window.quizPlay.socket.ws.close()")
            status = "document.getElementById('conn-status').textContent === '{}'"
            await bob.wait_for_function(status.format("reconnecting"))
            await bob.wait_for_function(status.format("online"))
            await bob.wait_for_selector("#view-question" + VISIBLE)
            for page, correct in ((ada, True), (cy, False)):
                await answer(page, correct=correct)
            await bob.reload()
            await bob.wait_for_selector("#view-question" + VISIBLE)
            assert await ada.is_visible("#view-question")  # not closed for everyone
            await answer(bob, correct=False)

            boards = []
            for page in (ada, bob, cy):
                await page.wait_for_selector("#view-finished" + VISIBLE)
                rows = await page.locator("[data-testid=leader-row]").all()
                boards.append([(await r.locator(".name").text_content(),
                                int(await r.locator(".score").text_content())) for r in rows])
            await ada.screenshot(path=str(REPO_ROOT / ".run" / "browser-finished.png"))
            await phone_shot(cy, "finished")
            assert await cy.locator("#leaderboard .rank").first.is_visible()  # ranks here

            # Someone opens the link after the end: the page says the game is over.
            late = await (await browser.new_context()).new_page()
            await register(late, base, "Dee", f"/play?room={room_id}")
            await late.wait_for_selector("#view-finished" + VISIBLE)
            assert await late.is_visible("#finished-note")

            # A wrong room link: a page that says so, no socket, no "reconnecting", a way back.
            sockets = []
            late.on("websocket", lambda ws: sockets.append(ws.url))
            await late.goto(base + "/play?room=NOSUCHRM")
            await late.wait_for_selector("#panel-missing" + VISIBLE)
            assert await late.text_content("#missing-id") == "NOSUCHRM"
            await late.wait_for_timeout(1500)  # a retrying socket would have tried by now
            assert sockets == [] and await late.is_hidden("#conn-status")
            await late.click("#btn-back")
            await late.wait_for_selector("#panel-room" + VISIBLE)
            assert "room=" not in late.url and await late.is_hidden("#conn-status")

            # The host opens a rematch: all three are taken to a new room, in their seats.
            assert await ada.is_visible("#btn-rematch")
            assert await bob.is_hidden("#btn-rematch") and await cy.is_hidden("#btn-rematch")
            await ada.click("#btn-rematch")
            for page in (ada, bob, cy):
                await page.wait_for_selector("#view-lobby" + VISIBLE)
                await page.wait_for_function(
                    "document.querySelectorAll('[data-testid=lobby-player]:not(.away)')"
                    ".length === 3")
            rematch_id = await ada.text_content("#room-id")
            assert rematch_id != room_id and re.fullmatch(ROOM_CODE, rematch_id)
            assert [await p.text_content("#room-id") for p in (bob, cy)] == [rematch_id] * 2
            assert f"room={rematch_id}" in cy.url and await ada.is_visible("#btn-start")
            await phone_shot(cy, "rematch-lobby")

            # The big screen on a projector: the code and a QR code a back row can read.
            screen = await (await browser.new_context(viewport=PROJECTOR)).new_page()
            await screen.goto(base + await ada.get_attribute("#screen-link", "href"))
            await screen.wait_for_selector("#view-lobby" + VISIBLE)
            await screen.screenshot(path=str(REPO_ROOT / ".run" / "browser-screen-lobby.png"))
            assert await screen.text_content("[data-testid=screen-code]") == rematch_id
            qr = await screen.locator("[data-testid=join-qr] svg").bounding_box()
            assert qr and qr["height"] >= 0.4 * PROJECTOR["height"], qr
        finally:
            await browser.close()

    assert boards[0] == boards[1] == boards[2]
    assert [name for name, _ in boards[0]] == ["Ada", "崔", "Bob"]
    assert boards[0][0][1] > boards[0][1][1] >= 500 and boards[0][2][1] == 0
    results = http("GET", f"/api/rooms/{room_id}/results")
    assert [(r["nickname"], r["score"]) for r in results.body["leaderboard"]] == boards[0]
    assert len(results.body["answers"]) == 6
