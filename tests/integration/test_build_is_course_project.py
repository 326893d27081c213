"""The loop closed: building the learner's copy through the last chapter, from the chapters'
listings alone, reproduces course_project/ (every file of it: the book's machinery lives beside
it, in workbook/), and the fresh build passes the live protocol tests as the reference server
does."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from course_project.config import config_get
from workbook.chapters.learner import LearnerServer, free_port
from workbook.chapters.learner_copy import build_differences, project_files
from workbook.chapters.listings import last_chapter
from workbook.paths import REPO_ROOT

pytestmark = [pytest.mark.live, pytest.mark.slow]

# The protocol as a client meets it: chat, handshakes, the HTTP API, whole games and bad frames.
LIVE_TESTS = ["tests/live/test_websocket_live.py", "tests/live/test_http_api.py",
              "tests/live/test_game_live.py"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop") / "course_project"
    done = subprocess.run(
        [sys.executable, "-m", "workbook", "learner", "build", str(root),
         "--through", str(last_chapter())],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "WORKBOOK_SOLUTIONS": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return root


def test_building_through_the_last_chapter_reproduces_course_project(built):
    differences = build_differences(built)
    assert not differences, (
        f"{len(differences)} difference(s); the first: {differences[0]}. Change the listing "
        "that writes the file (or regenerate: python -m workbook learner regenerate)")
    assert len(project_files(built)) > 50  # the comparison saw the whole project


def test_the_fresh_build_passes_the_live_protocol_tests(built):
    cfg = config_get()
    # The reference's databases and Redis database: the live tests read rows back from them.
    env_extra = {"QUIZ_STUDY_DB": cfg.study_db, "QUIZ_GAME_DB": cfg.game_db,
                 "QUIZ_REDIS_URL": cfg.redis_url}
    server = LearnerServer(built, free_port(), env_extra=env_extra)
    server.start()
    try:
        assert server.answers(), server.problem()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *LIVE_TESTS],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
            env={**os.environ, "QUIZ_PORT": str(server.port), "WORKBOOK_LIVE_EXTERNAL": "1"})
    finally:
        server.stop(quiet=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]
