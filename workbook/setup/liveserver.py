"""The live server: uvicorn running course_project's ASGI app in the background.

    python -m workbook.setup.liveserver start [--port N] [--timeout S]
    python -m workbook.setup.liveserver stop | status

Starting is a no-op when a server of this checkout's code already answers /api/health at that port,
and restarts one that runs other code; a port held by any other program is a clear error. The
pid and log files live in .run/.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from course_project.config import config_get, host_for_clients
from course_project.version import code_version
from workbook.errors import SetupError, step
from workbook.paths import REPO_ROOT, RUN_DIR
from workbook.setup.localservers import port_open, process_alive

SERVICE_NAME = "quiz-battle"


def health_get(host: str, port: int, timeout: float = 2.0) -> dict | None:
    """The health document if our server answers, None if nothing or something else answers."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/api/health", timeout=timeout) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as exc:  # 503 "degraded" is still our server talking
        try:
            body = json.loads(exc.read())
        except ValueError:
            return None
    except (urllib.error.URLError, OSError, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    return body if body.get("service") == SERVICE_NAME else None


@dataclass
class LiveServer:
    host: str
    port: int
    workers: int = 1
    name: str = "server"
    extra_env: dict[str, str] | None = None

    @classmethod
    def default(cls) -> LiveServer:
        cfg = config_get()
        return cls(cfg.server_host, cfg.server_port)

    @property
    def pid_file(self) -> Path:
        return RUN_DIR / f"{self.name}-{self.port}.pid"

    @property
    def log_file(self) -> Path:
        return RUN_DIR / f"{self.name}-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://{host_for_clients(self.host)}:{self.port}"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def healthy(self) -> bool:
        health = health_get(host_for_clients(self.host), self.port)
        return health is not None and health.get("status") == "ok"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "course_project.asgi:application",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--ws",
            "websockets-sansio",
            # Frames are small JSON that hardly shrinks: no per-connection compression state
            # (tests/benchmarks/bench_connections.py measures memory per connection).
            "--ws-per-message-deflate",
            "false",
            "--lifespan",
            "on",
            "--no-access-log",
            # Longer than one blocking pop of the stock channel layer (channels_redis'
            # brpop_timeout, 5 s), which a consumer being closed may still sit in: at 5 s a stop
            # could cancel it and log an error (the reliability tests read the logs).
            "--timeout-graceful-shutdown",
            "8",
        ]

    def start(self, timeout: float = 30.0) -> None:
        health = health_get(host_for_clients(self.host), self.port)
        if health is not None:
            if health.get("status") == "ok" and health.get("code_version") == code_version():
                step("server", f"already running at {self.url} (pid {self.pid() or '?'})")
                return
            reason = (
                "it runs other code than this checkout (older, or from another clone)"
                if health.get("status") == "ok"
                else f"it reports status {health.get('status')!r}"
            )
            if self.pid() is None:
                raise SetupError(
                    f"port {self.port} is held by a quiz server this checkout did not start "
                    f"({reason})",
                    "stop it where it was started (make stop) or set QUIZ_PORT to a free port",
                )
            step("server", f"restarting the server at {self.url}: {reason}")
            self.stop(quiet=True)
        if port_open(host_for_clients(self.host), self.port):
            raise SetupError(
                f"port {self.port} on {self.host} is held by another program",
                f"stop it (lsof -i :{self.port}) or set QUIZ_PORT to a free port",
            )
        RUN_DIR.mkdir(exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(self.extra_env or {}))
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                self.command(),
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if self.healthy():
                step(
                    "server", f"live at {self.url} (pid {proc.pid}, log {self._rel(self.log_file)})"
                )
                return
            time.sleep(0.2)
        self.stop(quiet=True)
        tail = self.log_file.read_text(errors="replace").strip().splitlines()[-1:] or ["(empty)"]
        raise SetupError(
            f"the server did not become healthy within {timeout:.0f}s: {tail[0]}",
            f"read {self._rel(self.log_file)}",
        )

    def stop(self, quiet: bool = False, timeout: float = 10.0) -> None:
        pid = self.pid()
        if pid is None:
            if not quiet:
                step("server", "not running")
            self.pid_file.unlink(missing_ok=True)
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process_alive(pid):
            time.sleep(0.1)
        if process_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        if not quiet:
            step("server", f"stopped (pid {pid})")

    def kill(self) -> None:
        """Kill -9 the whole process group, as a crash would."""
        pid = self.pid()
        if pid is not None:
            os.killpg(pid, signal.SIGKILL)
            while process_alive(pid):
                time.sleep(0.05)
            self.pid_file.unlink(missing_ok=True)

    @staticmethod
    def _rel(path: Path) -> str:
        try:
            return str(path.relative_to(REPO_ROOT))
        except ValueError:
            return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbook.setup.liveserver")
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    server = LiveServer.default()
    if args.port:
        server.port = args.port
    try:
        if args.command == "start":
            server.start(timeout=args.timeout)
        elif args.command == "stop":
            server.stop()
        else:
            health = health_get(host_for_clients(server.host), server.port)
            print(json.dumps(health, indent=1) if health else f"not running at {server.url}")
            return 0 if health else 1
    except SetupError as exc:
        print(f"error: {exc.problem}. Fix: {exc.fix}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
