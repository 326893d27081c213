"""The learner's copy in a chapter and on the command line: the `%%learner` magic, the copy's
live server, a chapter's first cell, the one-line checks, and the throw-away copy of the tests.

    python -m workbook learner build DIR --through NN   the copy as chapter NN leaves it
    python -m workbook learner serve DIR [--port P]     its live server, in the background
    python -m workbook learner stop [--port P]          end that server
    python -m workbook learner regenerate               course_project/ rebuilt from the chapters

Run in a chapter, the magic does its listing's step (listings.py) in the learner's folder
(`learner_dir()`); `build` replays the listings of every chapter up to NN, in order, into any
folder (learner_copy.py). So the chapters are the one source of the files they write.

The learner's server is uvicorn with `--reload`, run apart from the reference (isolation.py):
it picks up a saved file by itself, and a file that does not import leaves the reloader waiting
for the next save, with the traceback in its log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workbook.chapters.isolation import (
    DEFAULT_PORT,
    learner_dir,
    learner_env,
    learner_port,
    python_apart,
    settings_module,
    solutions_on,
)
from workbook.chapters.learner_copy import (
    _manifest,
    already_done,
    build,
    learner_catch_up,
    listing_apply,
    regenerate,
)
from workbook.chapters.listings import ListingError, listing_from_line
from workbook.errors import SetupError, step
from workbook.paths import RUN_DIR
from workbook.setup.localservers import port_open, process_alive


def learner_magic(line: str, cell: str) -> None:
    """The `%%learner` cell magic: this cell's step, done in the learner's folder. A failed step
    raises ListingError (the copy unchanged), so Run All stops where the copy went wrong."""
    root = learner_dir()
    server = learner_server()
    mark = server.mark()
    listing = listing_from_line(line, cell)
    if listing.solution and not (listing.apply or solutions_on()):
        print("The exercise is yours: this solution was not applied, and the check below says "
              "what is missing.\nTo apply it, run this cell with `%%learner solution --apply "
              f"{listing.action} {listing.path}` as its first line.")
        return
    done = already_done(listing, root)
    if done:
        print(done)
        return
    said = listing_apply(listing, root)
    print("\n".join(said))
    running = server._state() is not None
    # The reloader watches Python files only: a template or a script is read when it is served.
    if running and any(s.startswith(("wrote", "changed", "delivered")) and s.endswith(".py")
                       for s in said):
        print("your server reloaded it" if server.settle(mark) else
              f"your server has not reloaded it yet: {server.problem(mark) or 'see its log'}")


_cell_start: dict[str, int] = {}  # where the learner's server log stood when this cell began


def _cell_started(*_args) -> None:
    _cell_start["log"] = learner_server().mark()


def load_ipython_extension(ipython) -> None:
    ipython.register_magic_function(learner_magic, "cell", "learner")
    if _cell_started not in ipython.events.callbacks["pre_run_cell"]:
        ipython.events.register("pre_run_cell", _cell_started)


# --- the learner's server -------------------------------------------------------------------


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
        if not any(ln.startswith("Traceback (most recent") for ln in since):
            return None
        return self.problem(self.offset_of(began))

    def offset_of(self, line: int) -> int:
        """The log's byte offset where its `line`-th line (0-based) begins."""
        try:
            data = self.log_file.read_bytes()
        except OSError:
            return 0
        offset = 0
        for _ in range(line):
            nl = data.find(b"\n", offset)
            if nl < 0:
                break
            offset = nl + 1
        return offset

    def problem(self, offset: int | None = None, wait: float = 0.0) -> str | None:
        """The last traceback the server logged after `offset`, if its code failed since
        (waiting up to `wait` seconds for one to appear)."""
        deadline = time.monotonic() + wait
        lines = self.log_tail(offset)
        while time.monotonic() < deadline and not any(
                ln.startswith("Traceback (most recent") for ln in lines):
            time.sleep(0.05)
            lines = self.log_tail(offset)
        starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback (most recent")]
        if not starts:
            return None
        block = lines[starts[-1]:]
        end = next((i for i, ln in enumerate(block[1:], 1)
                    if ln and not ln.startswith((" ", "Traceback", "During", "The above"))), None)
        block = block[: end + 1] if end is not None else block
        # The learner's own frames and the error: the library frames above them say little.
        mine = next((i for i, ln in enumerate(block) if f'File "{self.root}/' in ln), None)
        if mine is not None:
            block = [block[0], "  ...", *block[mine:]]
        return "\n".join(block)


def learner_chapter_start(chapter: int) -> LearnerServer | None:
    """A chapter's first cell, for the learner's copy: the listings of the chapters before it
    that the copy lacks are done (learner_catch_up), and its server is started (a no-op if up).
    Chapter 00 comes before the copy and leaves it alone."""
    if chapter < 1:
        return None
    root = learner_dir()
    server = learner_server()
    mark = server.mark()
    before = _manifest(root)
    for line in learner_catch_up(chapter, root):
        print(line)
    if not (root / "manage.py").exists():
        return None  # chapter 01 starts the project
    state = server._state()
    running = state is not None and state[1] == str(root)
    said = server.start()
    changed = {rel for rel, sha in _manifest(root).items() if before.get(rel) != sha}
    if running and any(rel.endswith(".py") for rel in changed):
        server.settle(mark)  # the catch-up changed files under the running server: its reload
    print(f"your project: {root.name}/, served at {server.url}")
    problem = server.problem(mark if running else None)
    if problem and not server.answers():
        print(said, problem, sep="\n")
    return server


def check(ok: bool, passed: str, hint: str) -> None:
    """One line for a check of the learner's code: what holds, or what is missing and where;
    when it fails, also what the learner's server logged: the traceback of this cell's run, or
    the one that keeps its code from loading (saved in an earlier cell)."""
    print(f"✓ {passed}" if ok else f"✗ not yet: {hint}")
    if ok:
        return
    server = learner_server()
    problem = server.problem(_cell_start["log"], wait=0.5) if "log" in _cell_start else None
    if problem:
        print("your server logged, while this cell ran:", problem, sep="\n")
    elif broken := server.broken():
        print("your server is not serving: its code does not load. It logged:", broken,
              "(it loads your code again each time you save a file)", sep="\n")


def learner_manage(*args: str, root: Path | None = None) -> str:
    """`python manage.py ARGS` in the learner's copy, with its own settings (learner_env()):
    what it printed. ListingError with the error's last line if it fails."""
    root = root or learner_dir()
    done = subprocess.run(python_apart("manage.py", *args), cwd=root,
                          env=learner_env(), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ListingError(f"python manage.py {' '.join(args)} failed: {last[0]}")
    return done.stdout


def free_port() -> int:
    """A TCP port nothing listens on now (a sandbox's server, a second server of a copy)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def learner_server() -> LearnerServer:
    return LearnerServer(learner_dir(), learner_port())


def learner_serve() -> LearnerServer:
    """For a chapter: serve the learner's copy (a no-op when it is up) and say where; if the copy
    does not import, the traceback from its log."""
    server = learner_server()
    said = server.start()
    print(f"your project's server: {server.url}" if server.answers() else said)
    problem = server.problem()
    if problem and not server.answers():
        print(problem)
    return server


@contextlib.contextmanager
def learner_sandbox() -> Iterator[Path]:
    """A throw-away learner's copy and port for `make test` and `make notebooks`, so that they
    never touch a learner's own folder, with the exercises solved (WORKBOOK_SOLUTIONS=1 unless
    the environment says otherwise). Its server is stopped and the folder removed after."""
    if os.environ.get("WORKBOOK_LEARNER_DIR"):
        yield learner_dir()  # the caller chose a folder: use it, leave it
        return
    import tempfile

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="learner-") as tmp:
        root = Path(tmp) / "my_project"
        ours = ["WORKBOOK_LEARNER_DIR", "WORKBOOK_LEARNER_PORT"]
        os.environ.update(WORKBOOK_LEARNER_DIR=str(root), WORKBOOK_LEARNER_PORT=str(port))
        if "WORKBOOK_SOLUTIONS" not in os.environ:
            os.environ["WORKBOOK_SOLUTIONS"] = "1"
            ours.append("WORKBOOK_SOLUTIONS")
        try:
            yield root
        finally:
            LearnerServer(root, port).stop(quiet=True)
            for key in ours:
                os.environ.pop(key, None)


def sandbox_configure(config) -> None:
    """pytest_configure of the conftests: the session's throw-away copy (learner_sandbox)."""
    config._learner_sandbox = contextlib.ExitStack()
    config._learner_sandbox.enter_context(learner_sandbox())


def sandbox_unconfigure(config) -> None:
    stack = getattr(config, "_learner_sandbox", None)
    if stack is not None:
        stack.close()


# --- command line ---------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbook learner")
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="build the learner's copy from the chapters' listings")
    p_build.add_argument("dir", type=Path)
    p_build.add_argument("--through", type=int, required=True, help="last chapter, e.g. 01")
    sub.add_parser("regenerate", help="rewrite course_project/ from the chapters' listings")
    p_serve = sub.add_parser("serve", help="serve a learner's copy in the background")
    p_serve.add_argument("dir", type=Path, nargs="?", default=None)
    p_serve.add_argument("--port", type=int, default=None)
    p_stop = sub.add_parser("stop", help="stop the learner server on a port")
    p_stop.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    port = getattr(args, "port", None) or learner_port()  # build takes no --port
    if args.command == "build":
        build(args.dir.resolve(), args.through)
    elif args.command == "regenerate":
        for line in regenerate():
            step("learner", line)
    elif args.command == "serve":
        server = LearnerServer((args.dir or learner_dir()).resolve(), port)
        step("learner", server.start())
        problem = server.problem()
        if problem and not server.answers():
            print(problem, file=sys.stderr)
    else:
        LearnerServer(learner_dir(), port).stop()
    return 0
