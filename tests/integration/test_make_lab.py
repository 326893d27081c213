"""`make lab` ends in JupyterLab serving notebooks/, with the live server up."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from course_project.config import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_lab_command_brings_up_jupyterlab_on_the_notebooks(live_server):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbook", "lab", f"--port={port}", "--IdentityProvider.token=t"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env=dict(os.environ, DISPLAY=""),
    )
    try:
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/contents/index.ipynb?content=0&token=t", timeout=2
                ) as reply:
                    status = reply.status
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        assert status == 200, "JupyterLab did not serve notebooks/index.ipynb"
        assert live_server.healthy()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert "[lab] opening JupyterLab on notebooks/" in out
