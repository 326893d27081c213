"""The services manager and the live-server manager, against real binaries and servers."""

import os
import socket
import subprocess
import sys

import pymysql
import pytest
import redis

from workbook.errors import SetupError
from workbook.paths import REPO_ROOT
from workbook.setup.liveserver import LiveServer
from workbook.setup.localservers import LocalMariaDB, LocalRedis, mysql_greets


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _services(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbook.setup.services", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, env=dict(os.environ, **env), timeout=120)


def _checksums() -> str:
    out = _services("status").stdout
    from course_project.config import config_get

    cfg = config_get()
    conn = pymysql.connect(host=cfg.mysql_host, port=cfg.mysql_port, user=cfg.mysql_admin_user,
                           password=cfg.mysql_admin_password)
    with conn, conn.cursor() as cur:
        cur.execute(f"CHECKSUM TABLE `{cfg.study_db}`.question, `{cfg.study_db}`.user")
        return out + repr(cur.fetchall())


def test_services_up_twice_changes_nothing():
    first = _services("up")
    assert first.returncode == 0, first.stderr
    before = _checksums()
    second = _services("up")
    assert second.returncode == 0 and _checksums() == before
    assert "[services] mysql: seed data: " in second.stdout


def test_a_wrong_admin_password_ends_with_one_clear_line_and_exit_2():
    done = _services("up", QUIZ_MYSQL_ADMIN_PASSWORD="certainly-wrong")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused the admin login" in lines[0] and "Fix:" in lines[0]


def test_an_open_port_that_sends_no_greeting_is_not_a_ready_mysql():
    # mysqld listens before it accepts; a SIGTERM in that gap can hang MariaDB 10.11 for good,
    # so "started" must mean the server greeted us, not that the port was open.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert not mysql_greets("127.0.0.1", listener.getsockname()[1], timeout=0.3)
    from course_project.config import config_get

    cfg = config_get()
    assert mysql_greets(cfg.mysql_host, cfg.mysql_port)


def test_a_server_that_ignores_sigterm_is_killed_and_the_error_says_so(tmp_path):
    deaf = subprocess.Popen([sys.executable, "-c",
                             "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                             "print('ready', flush=True); time.sleep(60)"],
                            stdout=subprocess.PIPE, text=True)
    assert deaf.stdout.readline().strip() == "ready"
    db = LocalMariaDB(tmp_path, _free_port())
    db.pid_file.write_text(str(deaf.pid))
    with pytest.raises(SetupError, match="ignored SIGTERM for 1s and was killed"):
        db.stop(timeout=1)
    deaf.wait(timeout=5)  # stop() has already reaped it, so the status is not ours to read
    with pytest.raises(ProcessLookupError):
        os.kill(deaf.pid, 0)


def test_a_project_local_mariadb_and_redis_start_stop_and_restart_from_binaries(tmp_path):
    db = LocalMariaDB(tmp_path / "mysql", _free_port())
    rd = LocalRedis(tmp_path / "redis", _free_port())
    try:
        db.start()
        rd.start()
        conn = pymysql.connect(host=db.host, port=db.port, user="root", password="")
        with conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        assert redis.Redis(host=rd.host, port=rd.port).ping()
        db.stop()
        rd.stop()
        assert not db.running() and not rd.running()
        db.start()  # the second start reuses the initialised datadir
        assert db.running()
    finally:
        db.stop()
        rd.stop()


def test_a_local_server_on_a_held_port_is_a_clear_error(tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(SetupError, match=f"port {port} is held"):
            LocalRedis(tmp_path / "redis", port).start()
        assert not (tmp_path / "redis" / "redis.pid").exists()


def test_the_live_server_refuses_a_port_held_by_another_program():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(SetupError, match="held by another program"):
            LiveServer("127.0.0.1", port, name="held").start(timeout=5)


def test_starting_the_live_server_twice_is_a_no_op(live_server, capsys):
    pid = live_server.pid()
    live_server.start()
    assert live_server.pid() == pid and "already running" in capsys.readouterr().out
