"""`make lab` ends in JupyterLab serving notebooks/, with the live server up, and shows a newcomer
only its own progress lines and, last, the URL to open: Jupyter's start-up output goes to
.run/jupyterlab.log, and the project's Jupyter settings silence the warnings a learner cannot act
on (kernels over unencrypted TCP, the "get notified about official Jupyter news?" prompt)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from websockets.sync.client import connect

from workbook.paths import REPO_ROOT
from workbook.setup.lab import LOG_FILE

TOKEN = "t"
NOISE = ("running over TCP without encryption", "Jupyter news", "Shut down this Jupyter server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())


def _run_in_kernel(base: str, code: str) -> str:
    """What `code` prints in a new kernel of that JupyterLab, through its websocket, as a
    notebook runs a cell; the kernel is shut down afterwards."""
    start = urllib.request.Request(f"{base}/api/kernels?token={TOKEN}", b"{}", method="POST")
    with urllib.request.urlopen(start, timeout=60) as reply:
        kernel_id = json.loads(reply.read())["id"]
    msg_id, printed = uuid.uuid4().hex, []
    try:
        ws_url = f"ws{base[4:]}/api/kernels/{kernel_id}/channels?token={TOKEN}"
        with connect(ws_url, open_timeout=30) as ws:
            ws.send(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "",
                           "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
                "parent_header": {}, "metadata": {}, "channel": "shell",
                "content": {"code": code, "silent": False, "store_history": False,
                            "user_expressions": {}, "allow_stdin": False},
            }))
            while True:
                msg = json.loads(ws.recv(timeout=60))
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream":
                    printed.append(msg["content"]["text"])
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return "".join(printed)
    finally:
        stop = urllib.request.Request(f"{base}/api/kernels/{kernel_id}?token={TOKEN}",
                                      method="DELETE")
        urllib.request.urlopen(stop, timeout=30).close()


@pytest.mark.slow
def test_the_lab_command_brings_up_jupyterlab_on_the_notebooks(live_server):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_start = LOG_FILE.stat().st_size if LOG_FILE.exists() else 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbook", "lab", f"--port={port}",
         f"--IdentityProvider.token={TOKEN}"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env=dict(os.environ, DISPLAY=""),
    )
    lines: list[str] = []  # what the terminal shows, line by line as it comes

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if any(line.startswith("http") for line in lines):
                break
            time.sleep(0.2)
        with urllib.request.urlopen(
            f"{base}/api/contents/index.ipynb?content=0&token={TOKEN}", timeout=10
        ) as reply:
            assert reply.status == 200, "JupyterLab did not serve notebooks/index.ipynb"
        assert live_server.healthy()
        # The news prompt shows while fetchNews is "none"; the project's overrides.json says no.
        notification = _get_json(
            f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={TOKEN}")
        assert notification["schema"]["properties"]["fetchNews"]["default"] == "false"
        # A kernel starts, and talks to JupyterLab (over CurveZMQ, which silences its warning).
        assert _run_in_kernel(base, "print(6 * 7)").strip() == "42"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # `workbook lab` passes it on to JupyterLab
        proc.wait(timeout=60)
        reader.join(timeout=10)
    with pytest.raises(urllib.error.URLError):  # JupyterLab stopped with it
        urllib.request.urlopen(f"{base}/api", timeout=5)

    printed = [line.rstrip("\n") for line in lines if line.strip()]
    out = "\n".join(printed)
    assert "[lab] opening JupyterLab on notebooks/" in out
    # What the learner reads last: one sentence, then the URL alone, with its token.
    assert printed[-2] == "[lab] JupyterLab is ready. Open this URL in your browser:", out
    assert re.fullmatch(rf"http://(localhost|127\.0\.0\.1):{port}/lab\?token={TOKEN}",
                        printed[-1]), out
    # Nothing of Jupyter's own logging on the terminal: it is all in the log file.
    assert not [line for line in printed if re.match(r"\[[DIWEC] \d{4}-", line)], out
    log = LOG_FILE.read_bytes()[log_start:].decode(errors="replace")
    assert "is running at" in log  # where Jupyter's start-up output went
    for noise in NOISE:
        assert noise not in out
        assert noise not in log, f"{noise!r} in {LOG_FILE}"
