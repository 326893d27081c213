"""Shared fixtures. The live server, MySQL and Redis are real: `make test` brings them up first,
and `live_server` makes sure the server answers (starting it if a developer runs pytest alone)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "course_project.settings")


@pytest.fixture(scope="session")
def django_ready():
    import django

    django.setup()


@pytest.fixture(scope="session")
def live_server():
    """The reference's live server, started if need be. With WORKBOOK_LIVE_EXTERNAL=1 the server
    at QUIZ_HOST:QUIZ_PORT is someone else's (the loop test serves a fresh build of the
    chapters there): it must answer /api/health with status ok, and is left alone."""
    from course_project.config import config_get
    from workbook.setup.liveserver import LiveServer, health_get

    server = LiveServer.default()
    if os.environ.get("WORKBOOK_LIVE_EXTERNAL") == "1":
        cfg = config_get()
        health = health_get(cfg.client_host, cfg.server_port)
        assert health is not None and health.get("status") == "ok", (
            f"WORKBOOK_LIVE_EXTERNAL=1, but {cfg.server_url}/api/health says {health}")
        return server
    server.start()
    return server


@pytest.fixture
async def pools(django_ready):
    """The real aiomysql pools, opened on the test's loop and closed after it."""
    from common.db import pools_close, pools_open

    await pools_open()
    yield
    await pools_close()



# Tests and chapters build a throw-away learner's copy (learner_sandbox in
# workbook/chapters/learner.py), never the learner's own notebooks/my_project/.
def pytest_configure(config):
    from workbook.chapters.learner import sandbox_configure

    sandbox_configure(config)


def pytest_unconfigure(config):
    from workbook.chapters.learner import sandbox_unconfigure

    sandbox_unconfigure(config)
