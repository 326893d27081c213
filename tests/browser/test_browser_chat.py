"""Two people chat in two browsers (Debian's headless Chromium, driven by Playwright) on the chat
page `/chat/<room_name>/`: the reference server's, where the chat wants a ticket, and a learner's
copy as chapter 03 leaves it (no ticket needed) and as chapter 05 does (a ticket in the address)."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from course_project.config import config_get
from workbook.chapters.client import player_new
from workbook.chapters.learner import LearnerServer, free_port
from workbook.chapters.mine import learner_tickets
from workbook.paths import REPO_ROOT
from workbook.setup.browser import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.live,
              pytest.mark.usefixtures("live_server", "django_ready")]

SCREEN = {"width": 800, "height": 640}
LOG = "#log li"


async def shot(page, name: str) -> None:
    await page.screenshot(path=str(REPO_ROOT / ".run" / f"browser-chat-{name}.png"))


async def send(page, text: str, *, button: bool = False) -> None:
    """Type a message and send it with Enter, or with the Send button."""
    await page.fill("#text", text)
    await (page.click("button") if button else page.press("#text", "Enter"))


async def test_two_players_chat_on_the_reference_page_and_a_page_without_ticket_says_why(chromium):
    from playwright.async_api import async_playwright, expect

    base = config_get().server_url
    room = f"browser-{secrets.token_hex(4)}"
    chat_url = f"{base}/chat/{room}/"
    ada = player_new("Ada")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                           headless=True)
        try:
            # Ada's tab holds her player, as the play page leaves it (same origin, same tab).
            one = await (await browser.new_context(viewport=SCREEN)).new_page()
            await one.goto(base + "/api/health")
            await one.evaluate("p => sessionStorage.setItem('quiz.me', JSON.stringify(p))", ada)
            await one.goto(chat_url)
            as_ada = f"connected as user {ada['user_id']}"
            await expect(one.locator("#state")).to_have_text(as_ada)
            assert await one.is_hidden("#refused")

            # 小明 comes without a player: the page says why it cannot join, and where to go.
            two = await (await browser.new_context(viewport=SCREEN)).new_page()
            sockets = []
            two.on("websocket", lambda ws: sockets.append(ws.url))
            await two.goto(chat_url)
            await expect(two.locator("#state")).to_have_text("refused")
            await expect(two.locator("#refused")).to_be_visible()
            why = await two.inner_text("#refused")
            assert "wants a ticket, and this page has none" in why
            assert "Pick a nickname on the home page first" in why
            assert sockets == [f"{base.replace('http', 'ws', 1)}/ws/chat/{room}/"]
            await shot(two, "refused")

            # He follows the advice: the home page, a nickname, back to the chat.
            await two.click("#refused a")
            await two.fill("#nickname", "小明")
            await two.click("#btn-register")
            await two.wait_for_function("sessionStorage.getItem('quiz.me') !== null")
            xiaoming = await two.evaluate("JSON.parse(sessionStorage.getItem('quiz.me'))")
            await two.goto(chat_url)
            await expect(two.locator("#state")).to_have_text(
                f"connected as user {xiaoming['user_id']}")
            assert await two.is_hidden("#refused")

            await send(one, "hello from Ada")
            await expect(one.locator(LOG)).to_have_text(["you: hello from Ada"])
            await expect(two.locator(LOG)).to_have_text([f"user {ada['user_id']}: hello from Ada"])
            await send(two, "你好, Ada! 我是小明", button=True)
            await expect(one.locator(LOG)).to_have_text(
                ["you: hello from Ada", f"user {xiaoming['user_id']}: 你好, Ada! 我是小明"])
            await expect(two.locator(LOG)).to_have_text(
                [f"user {ada['user_id']}: hello from Ada", "you: 你好, Ada! 我是小明"])
            assert await one.input_value("#text") == ""  # sent, so the box is empty again

            # A frame the server refuses: an error line on the sender's page only.
            await one.evaluate("socket.send(JSON.stringify({text: 'wrong field'}))")
            await expect(one.locator(LOG).last).to_have_text(
                "error bad_field: 'message' must be a non-empty string")
            await expect(one.locator(LOG).last).to_have_class("error")
            await send(one, "<b>not bold</b>")  # text, never markup
            await expect(two.locator(LOG).last).to_have_text(
                f"user {ada['user_id']}: <b>not bold</b>")
            assert await two.locator("#log b").count() == 0
            await expect(two.locator(LOG)).to_have_count(3)
            await shot(one, "ada")
            await shot(two, "xiaoming")

            # A ticket in the address instead: Ada's joins as Ada; a forged one is refused, and
            # the page says so.
            three = await (await browser.new_context(viewport=SCREEN)).new_page()
            await three.goto(f"{chat_url}?ticket={ada['ticket']}")
            await expect(three.locator("#state")).to_have_text(as_ada)
            await three.goto(f"{chat_url}?ticket=qt1.{ada['user_id']}.1u3x9K.{'A' * 43}")
            await expect(three.locator("#state")).to_have_text("refused")
            assert "refused this page's ticket" in await three.inner_text("#refused")
        finally:
            await browser.close()


@contextlib.contextmanager
def copy_served(root: Path, through: str) -> Iterator[LearnerServer]:
    """A learner's copy built into `root` as chapter `through` leaves it, served on a free port."""
    done = subprocess.run(
        [sys.executable, "-m", "workbook", "learner", "build", str(root), "--through", through],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "WORKBOOK_SOLUTIONS": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    server = LearnerServer(root, free_port())
    server.start()
    try:
        assert server.answers(), server.problem()
        yield server
    finally:
        server.stop(quiet=True)


async def test_two_tabs_chat_on_the_page_chapter_03_builds(chromium, tmp_path):
    from playwright.async_api import async_playwright, expect

    with copy_served(tmp_path / "my_project", "03") as server:
        chat_url = f"{server.url}/chat/lobby/"
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                               headless=True)
            try:
                one, two = [await (await browser.new_context(viewport=SCREEN)).new_page()
                            for _ in range(2)]
                for page in (one, two):
                    await page.goto(chat_url)
                    await expect(page.locator("#state")).to_have_text("connected")  # no ticket
                await send(one, "hi from tab one")
                for page in (one, two):
                    await expect(page.locator(LOG)).to_have_text(["someone: hi from tab one"])
                await send(two, "你好, 第二个标签页", button=True)
                for page in (one, two):
                    await expect(page.locator(LOG)).to_have_text(
                        ["someone: hi from tab one", "someone: 你好, 第二个标签页"])
                await shot(two, "learner-03")
            finally:
                await browser.close()


async def test_the_page_needs_a_ticket_in_its_address_as_chapter_05_says(chromium, tmp_path):
    """Chapter 05's copy refuses the page without a ticket; with tickets of users 7 and 8 that
    the copy's own code issued, given in the address, two tabs chat (who wrote what, from the
    chapter's exercise on)."""
    from playwright.async_api import async_playwright, expect

    root = tmp_path / "my_project"
    with copy_served(root, "05") as server:
        chat_url = f"{server.url}/chat/lobby/"
        seven, eight = learner_tickets([7, 8], root=root)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                               headless=True)
            try:
                one, two, none = [await (await browser.new_context(viewport=SCREEN)).new_page()
                                  for _ in range(3)]
                await none.goto(chat_url)
                await expect(none.locator("#state")).to_have_text("refused")
                assert "this page has none" in await none.inner_text("#refused")
                for page, ticket, uid in ((one, seven, 7), (two, eight, 8)):
                    await page.goto(f"{chat_url}?ticket={ticket}")
                    await expect(page.locator("#state")).to_have_text(f"connected as user {uid}")
                await send(one, "hello, 8")
                await expect(two.locator(LOG)).to_have_text(["user 7: hello, 8"])
                await send(two, "你好, 7")
                await expect(one.locator(LOG)).to_have_text(["you: hello, 8", "user 8: 你好, 7"])
                await shot(one, "learner-05")
            finally:
                await browser.close()
