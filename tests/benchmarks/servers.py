"""The servers a benchmark measures: the project under uvicorn (port 8300, channel layer chosen by
QUIZ_CHANNEL_LAYER) and the bare-websockets anchor (port 8301), each started and stopped by us."""

from __future__ import annotations

import contextlib
import io
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .harness import ANCHOR_PORT, HOST, PROJECT_PORT, REPO_ROOT

ANCHOR_SCRIPT = Path(__file__).resolve().parent / "anchor_server.py"


class ServerError(RuntimeError):
    pass


def _free(port: int) -> None:
    from workbook.setup.localservers import port_open

    if port_open(HOST, port):
        raise ServerError(
            f"port {port} is already taken; the benchmarks serve only on {PROJECT_PORT} and "
            f"{ANCHOR_PORT}: stop what runs there (`QUIZ_PORT={port} make stop` for a live server)"
        )


@contextmanager
def project_server(layer: str, *, port: int = PROJECT_PORT) -> Iterator[int]:
    """The live project with channel layer `layer`; yields the uvicorn process id."""
    from workbook.setup.liveserver import LiveServer, health_get

    server = LiveServer(
        HOST, port, name="bench", extra_env={"QUIZ_CHANNEL_LAYER": layer, "QUIZ_PORT": str(port)}
    )
    server.stop(quiet=True)  # a server of ours left by an interrupted run (our pid file only)
    _free(port)
    with contextlib.redirect_stdout(io.StringIO()):
        server.start(timeout=60)
    try:
        health = health_get(HOST, port) or {}
        pid = server.pid()
        if pid is None or health.get("pid") != pid:
            raise ServerError(f"the server on {port} is not the one we started")
        yield pid
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            server.stop(quiet=True)


def project_deflate() -> bool:
    """Whether the project's uvicorn offers permessage-deflate (uvicorn's default: yes); the
    anchor does the same, so both compress or neither does."""
    from workbook.setup.liveserver import LiveServer

    cmd = LiveServer(HOST, PROJECT_PORT).command()
    for i, arg in enumerate(cmd):
        if arg.startswith("--ws-per-message-deflate"):
            value = arg.partition("=")[2] or cmd[i + 1]
            return value.strip().lower() in ("1", "true", "yes", "on")
    return True


def layer_class(port: int = PROJECT_PORT) -> str:
    from workbook.setup.liveserver import health_get

    return ((health_get(HOST, port) or {}).get("channel_layer") or {}).get("class", "?")


@contextmanager
def anchor_server(*, port: int = ANCHOR_PORT, timeout: float = 15.0) -> Iterator[int]:
    """The bare websockets server in a subprocess; yields its process id."""
    _free(port)
    deflate = [] if project_deflate() else ["--no-deflate"]
    proc = subprocess.Popen(
        [sys.executable, str(ANCHOR_SCRIPT), "--host", HOST, "--port", str(port), *deflate],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready and proc.stdout else ""
        if not line.startswith("ready"):
            raise ServerError(f"the anchor server did not start within {timeout:.0f}s: {line!r}")
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
