"""The learner's copy's live server: uvicorn with `--reload`, run apart from the reference
(isolation.py), its pid and log under .run/. It picks up a saved file by itself; a file that does
not import leaves the reloader waiting for the next save, with the traceback in its log, which
`problem()` and `broken()` read for the checks."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from workbook.chapters.isolation import (
    DEFAULT_PORT,
    learner_dir,
    learner_env,
    learner_port,
    python_apart,
    settings_module,
)
from workbook.errors import SetupError, step
from workbook.paths import RUN_DIR
from workbook.setup.localservers import port_open, process_alive


@dataclass
class LearnerServer:
    root: Path
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    offset: int = 0  # where the log stood when this object last started the server
    env_extra: dict[str, str] | None = None  # on top of learner_env(), e.g. a broken password

    @property
    def pid_file(self) -> Path:
        return RUN_DIR / f"learner-{self.port}.pid"

    @property
    def log_file(self) -> Path:
        return RUN_DIR / f"learner-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _state(self) -> tuple[int, str] | None:
        """(pid, folder served) of the reloader this project started, if it is alive."""
        try:
            data = json.loads(self.pid_file.read_text())
            os.kill(int(data["pid"]), 0)
            return int(data["pid"]), str(data["root"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def answers(self) -> bool:
        """Some HTTP answer at / (any status: a 404 is the learner's app talking)."""
        try:
            with urllib.request.urlopen(self.url + "/", timeout=10):
                return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            return False

    def command(self) -> list[str]:
        app = settings_module(self.root).rsplit(".", 1)[0] + ".asgi:application"
        return python_apart(
            "uvicorn", app, "--app-dir", str(self.root), "--host", self.host,
            "--port", str(self.port), "--reload", "--reload-dir", str(self.root),
            "--reload-delay", "0.1", "--ws", "websockets-sansio", "--ws-per-message-deflate",
            "false", "--no-access-log",
            # JupyterLab's checkpoints of a file open in its editor (.ipynb_checkpoints/): not code
            "--reload-exclude", "*-checkpoint.py",
            # A handler of the learner's that never returns (a connect() awaiting what never
            # comes) must not hold up the next reload: the old worker gets 2 s to finish.
            "--timeout-graceful-shutdown", "2")

    def start(self, timeout: float = 20.0) -> str:
        """Serve the copy (a no-op if this server already serves it). Returns a status line;
        a copy that does not import still leaves the reloader running (see `problem()`)."""
        state = self._state()
        if state is not None and state[1] == str(self.root):
            return f"already serving {self.root.name}/ at {self.url} (pid {state[0]})"
        if state is not None:
            self.stop(quiet=True)
        if port_open(self.host, self.port):
            raise SetupError(f"port {self.port} is held by another program",
                             "stop it or set WORKBOOK_LEARNER_PORT to a free port")
        RUN_DIR.mkdir(exist_ok=True)
        env = {**learner_env(), **(self.env_extra or {})}
        offset = self.offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(self.command(), cwd=self.root, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(json.dumps({"pid": proc.pid, "root": str(self.root)}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise SetupError(f"uvicorn exited at once: {self.log_tail(offset)[-1:]}",
                                 f"read {self.log_file}")
            if self.answers():
                return f"serving {self.root.name}/ at {self.url} (pid {proc.pid})"
            if self.problem(offset):
                return f"started at {self.url}, but the project does not import (see its log)"
            if any("Application startup failed" in ln for ln in self.log_tail(offset)):
                return f"started at {self.url}, but the application's startup failed (see its log)"
            time.sleep(0.2)
        return f"started at {self.url}, not answering yet after {timeout:.0f} s (see its log)"

    def stop(self, quiet: bool = False, timeout: float = 10.0) -> None:
        state = self._state()
        self.pid_file.unlink(missing_ok=True)
        if state is None:
            if not quiet:
                step("learner", f"no learner server on port {self.port}")
            return
        pid = state[0]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process_alive(pid):
            time.sleep(0.1)
        if process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        if not quiet:
            step("learner", f"stopped the learner server on port {self.port} (pid {pid})")

    def settle(self, mark: int, timeout: float = 20.0) -> bool:
        """Wait for the reload that a file saved after log offset `mark` causes: True once a
        new worker started and answers, False if its code failed or time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any("Application startup complete" in ln for ln in self.log_tail(mark)):
                return self.answers()
            if self.problem(mark):
                return False
            time.sleep(0.05)
        return False

    def log_tail(self, offset: int | None = None) -> list[str]:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(self.offset if offset is None else offset)
                return f.read().decode(errors="replace").splitlines()
        except OSError:
            return []

    def mark(self) -> int:
        """Where the log ends now: pass it to problem() to see only what happens after."""
        return self.log_file.stat().st_size if self.log_file.exists() else 0

    def broken(self) -> str | None:
        """The traceback that keeps the server's code from loading now, if it does not load:
        since its last reload began (or since it started), a traceback and no worker that
        started. None while it serves (a handler's error does not stop it)."""
        lines = self.log_tail(0)
        began = max((i for i, ln in enumerate(lines)
                     if "Reloading..." in ln or ln.startswith("INFO:     Will watch")), default=0)
        since = lines[began:]
        if any(ln.startswith("INFO:     Started server process") for ln in since):
            return None
        return self._last_traceback(since)

    def problem(self, offset: int | None = None, wait: float = 0.0) -> str | None:
        """The last traceback the server logged after `offset`, if its code failed since
        (waiting up to `wait` seconds for one to appear)."""
        deadline = time.monotonic() + wait
        lines = self.log_tail(offset)
        while time.monotonic() < deadline and not any(
                ln.startswith("Traceback (most recent") for ln in lines):
            time.sleep(0.05)
            lines = self.log_tail(offset)
        return self._last_traceback(lines)

    def _last_traceback(self, lines: list[str]) -> str | None:
        """The last traceback in log `lines`, cut to what a learner needs: the learner's own
        frames and the error (the library frames above them say little, and name this machine's
        folders), their files named from the copy's folder on."""
        starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback (most recent")]
        if not starts:
            return None
        block = lines[starts[-1]:]
        end = next((i for i, ln in enumerate(block[1:], 1)
                    if ln and not ln.startswith((" ", "Traceback", "During", "The above"))), None)
        block = block[: end + 1] if end is not None else block
        mine = next((i for i, ln in enumerate(block) if f'File "{self.root}/' in ln), None)
        if mine is not None:
            block = [block[0], "  ...", *block[mine:]]
        else:
            block = [block[0], "  ... (the libraries' frames: none of your files is in it)",
                     block[-1]]
        return "\n".join(block).replace(f'File "{self.root.parent}/', 'File "')

def free_port() -> int:
    """A TCP port nothing listens on now (a sandbox's server, a second server of a copy)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def learner_server() -> LearnerServer:
    return LearnerServer(learner_dir(), learner_port())


