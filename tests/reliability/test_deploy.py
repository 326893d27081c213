"""The deployment of course_project/deploy, for real: nginx with TLS in front of two app nodes in
network namespaces (workbook.deploy), on a stack of the test's own. The live protocol tests run
through wss://, a node is drained mid-game, the unit files are verified, and the gunicorn
alternative serves the app."""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from workbook import deploy
from workbook.deploy import Plan, drills, https_get
from workbook.paths import PROJECT_DIR, REPO_ROOT

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.faults]

LIVE_TESTS = ["tests/live/test_websocket_live.py", "tests/live/test_http_api.py",
              "tests/live/test_game_live.py"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def deployed():
    """The stack, under names and addresses no demo uses (`make deploy-demo` may be running),
    brought down afterwards however the tests ended. It runs from a private folder (mode 0700,
    as a clone under /root or in `mktemp -d` is): the project is copied there and the demo's
    own files live under it, so nginx's workers reach only what the demo puts where they can."""
    if os.geteuid() != 0:
        message = "the deployment test makes network namespaces: it needs root"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    private = Path(tempfile.mkdtemp(prefix="deploy-test-"))
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    app_dir = private / "course_project"
    shutil.copytree(PROJECT_DIR, app_dir,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".*cache"))
    plan = Plan(root=private / "run", https_port=_free_port(), http_port=_free_port(),
                app_dir=app_dir, prefix="qzt", net="10.243.0")
    deploy.down(plan)  # what an interrupted run may have left
    try:
        deploy.up(plan)
        yield plan
    finally:
        deploy.down(plan)
        assert deploy.status(plan) == {"netns": [], "links": [], "nginx": None,
                                       "nodes": dict.fromkeys(plan.nodes), "mysql": False,
                                       "redis": []}
        assert not plan.static_root.exists() and not plan.nginx_tmp.exists()
        shutil.rmtree(private, ignore_errors=True)


def test_nginx_redirects_http_serves_static_files_and_passes_the_rest_on(deployed):
    conn = http.client.HTTPConnection("127.0.0.1", deployed.http_port, timeout=5)
    conn.request("GET", "/play?room=ABC234")
    reply = conn.getresponse()
    assert (reply.status, reply.getheader("Location")) == (
        301, f"{deployed.url}/play?room=ABC234")
    conn.close()

    status, headers, body = https_get(deployed, "/static/answer_game/game.css")
    shipped = (REPO_ROOT / "course_project/answer_game/static/answer_game/game.css").read_bytes()
    assert (status, body) == (200, shipped)
    assert headers.get("Cache-Control") == "max-age=3600"  # nginx's `expires`, not Django

    status, headers, body = https_get(deployed, "/api/health")
    assert status == 200 and b'"status": "ok"' in body.replace(b'":"', b'": "')
    assert headers.get("Strict-Transport-Security", "").startswith("max-age=")
    # The node trusts nginx's X-Forwarded-Proto: the page was served as https, so the big
    # screen's join link (built by Django from the request) is an https one.
    status, _, body = https_get(deployed, "/screen/ABC234")
    assert status == 200 and f"{deployed.url}/play?room=ABC234".encode() in body


def test_the_live_protocol_tests_pass_through_wss_on_two_nodes(deployed):
    plan = deployed
    env = {**os.environ, **deploy.client_env(plan), "WORKBOOK_LIVE_EXTERNAL": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *LIVE_TESTS],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.fixture
def as_a_user(deployed, monkeypatch):
    """This process talks to the stack as its users do (workbook.deploy.drills needs it)."""
    from course_project.config import config_get

    for key, value in deploy.client_env(deployed).items():
        monkeypatch.setenv(key, value)
    config_get.cache_clear()
    yield deployed
    monkeypatch.undo()
    config_get.cache_clear()


async def test_a_drained_node_hands_its_players_and_rooms_over_and_loses_no_answer(as_a_user,
                                                                                   figures):
    """Tried: six players through nginx, node 1 sent SIGTERM when question 2 opens.
    Asserted: the players of node 1 came back through nginx to node 2, which drove the room to
    the end; everyone saw the same leaderboard; every acknowledged answer is a row."""
    result = await drills.node_drain_drill(as_a_user)
    figures.report("deploy: node drained mid-game", players=result.players,
                   sockets_per_node=result.sockets_per_node, drain_s=round(result.fault_s, 2),
                   players_moved=result.moved, answers_acked=len(result.acked),
                   rows=len(result.stored), rows_lost=len(result.lost),
                   game_s=round(result.game_s, 1), faults=1)
    assert all(result.sockets_per_node), f"nginx put every socket on one node: {result}"
    assert result.moved == result.sockets_per_node[0] and result.leaderboards == 1
    after = result.nodes_after[1]["game"]
    assert after["sockets"] == result.players and after["rooms_driven"] >= 1
    assert not result.lost and len(result.stored) == 3 * result.players


async def test_the_redis_master_killed_mid_game_fails_over_and_loses_no_answer(as_a_user, figures,
                                                                              server_logs):
    """Tried: six players through nginx, the Redis master SIGKILLed when question 2 opens.
    Asserted: the sentinels promote the replica, a room can be made through nginx again, the
    game ends the same for everyone, every acknowledged answer is a row."""
    # The probe's room creations during the outage get 503 `unavailable`, which Django logs.
    server_logs.allow.append(re.compile(r"ERROR django.request Service Unavailable: /api/rooms"))
    before = deploy.redis_master(as_a_user)
    result = await drills.redis_kill_drill(as_a_user)
    figures.report("deploy: Redis master killed mid-game", players=result.players,
                   promoted_s=round(result.fault_s, 2),
                   writes_again_s=round(result.writes_again_s, 2),
                   answers_acked=len(result.acked), rows=len(result.stored),
                   rows_lost=len(result.lost), game_s=round(result.game_s, 1), faults=1)
    assert deploy.redis_master(as_a_user) != before and result.leaderboards == 1
    assert not result.lost and len(result.stored) == 3 * result.players


def test_the_unit_files_verify_and_check_deploy_is_clean(deployed, tmp_path):
    analyze = shutil.which("systemd-analyze")
    units = ["quiz-node.service", "quiz-node-gunicorn.service"]
    for name in units:
        (tmp_path / name).write_text(deploy.unit_render(deployed, name))
    if analyze:
        done = subprocess.run([analyze, "verify", *(str(tmp_path / u) for u in units)],
                              capture_output=True, text=True)
        assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    for name in units:  # what systemd-analyze cannot see: each ${VAR} is in the env file
        argv = deploy.unit_exec(deploy.unit_render(deployed, name), deploy.node_env(deployed, 0))
        assert Path(argv[0]).exists() and "${" not in " ".join(argv)
    env = {**os.environ, **deploy.node_env(deployed, 0)}
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                           "WARNING"], cwd=deployed.app_dir, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "no issues" in done.stdout, done.stdout + done.stderr



async def test_the_gunicorn_unit_serves_the_app_with_its_workers(deployed, django_ready):
    """quiz-node-gunicorn.service's ExecStart (on loopback, beside the nodes): health, a
    websocket through one of its uvicorn workers, and a clean stop on SIGTERM."""
    from common.tickets import ticket_issue
    from workbook.chapters.client import ws_open, ws_recv_json, ws_send_json

    port = _free_port()
    env = {**deploy.node_env(deployed, 0), "QUIZ_NODE_HOST": "127.0.0.1",
           "QUIZ_NODE_PORT": str(port), "QUIZ_PROXY_IPS": "127.0.0.1"}
    argv = deploy.unit_exec(deploy.unit_render(deployed, "quiz-node-gunicorn.service"), env)
    log = deployed.root / "gunicorn.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=deployed.app_dir, env={**os.environ, **env},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 40
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            health = deploy.health_at(base)
            if health and health.get("status") == "ok":
                break
            await asyncio.sleep(0.2)
        assert health and health["status"] == "ok", log.read_text()[-2000:]
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
        assert len(workers.stdout.split()) == int(env["QUIZ_NODE_WORKERS"])
        ws = await ws_open("/ws/chat/gunicorn/", ticket_issue(user_id=7), base=base)
        await ws_send_json(ws, {"message": "through gunicorn"})
        assert (await ws_recv_json(ws))["message"] == "through gunicorn"
        await ws.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, log.read_text()[-2000:]
