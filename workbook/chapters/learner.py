"""The learner's copy in a chapter and on the command line: the `%%learner` magic, a chapter's
first cell, the one-line checks, and the throw-away copy of the tests.

    python -m workbook learner build DIR --through NN   the copy as chapter NN leaves it
    python -m workbook learner serve DIR [--port P]     its live server, in the background
    python -m workbook learner stop [--port P]          end that server
    python -m workbook learner regenerate               course_project/ rebuilt from the chapters

Run in a chapter, the magic does its listing's step (listings.py) in the learner's folder
(`learner_dir()`); `build` replays the listings of every chapter up to NN, in order, into any
folder (learner_copy.py). So the chapters are the one source of the files they write. The
copy's server is learner_server.py's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from workbook.chapters.isolation import (
    learner_dir,
    learner_env,
    learner_port,
    python_apart,
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
from workbook.chapters.learner_server import LearnerServer, free_port, learner_server
from workbook.chapters.listings import ListingError, listing_from_line
from workbook.errors import step

__all__ = [  # what the chapters and tests import from here, learner_server.py's included
    "LearnerServer", "ListingError", "check", "free_port", "learner_chapter_start", "learner_dir",
    "learner_magic", "learner_manage", "learner_sandbox", "learner_serve", "learner_server",
    "load_ipython_extension", "main", "sandbox_configure", "sandbox_unconfigure",
]


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
    never touch a learner's own folder. The exercises stay unsolved, as Run All leaves them for a
    learner (WORKBOOK_SOLUTIONS=1 in the environment solves them). Its server is stopped and the
    folder removed after."""
    if os.environ.get("WORKBOOK_LEARNER_DIR"):
        yield learner_dir()  # the caller chose a folder: use it, leave it
        return
    import tempfile

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="learner-") as tmp:
        root = Path(tmp) / "my_project"
        ours = ["WORKBOOK_LEARNER_DIR", "WORKBOOK_LEARNER_PORT"]
        os.environ.update(WORKBOOK_LEARNER_DIR=str(root), WORKBOOK_LEARNER_PORT=str(port))
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
