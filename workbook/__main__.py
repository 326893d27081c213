"""`python -m workbook <command>`: what the Makefile's targets run, one progress line per step.

setup       services (MySQL, Redis, databases, seed) and the live server
lab         setup, then JupyterLab on notebooks/
serve       setup (the live server in the background)
stop        stop the live server and the learner's server
learner     the learner's copy: build DIR --through NN | serve [DIR] [--port P] | stop [--port P]
services    services only;  reset: drop and recreate the course databases
test        lint, setup, Chromium and nginx for their tests, then all of pytest with strict nbval
lint        ruff on course_project/, workbook/ and tests/ (the rules in pyproject.toml)
notebooks   setup, then re-execute every notebook in place and save its outputs
deploy      the deployment demo: up | down | status | drain N | start N (nginx, TLS, two nodes)
bench       setup, then the benchmarks (prints tables, writes tests/benchmarks/results/*.json)
"""

from __future__ import annotations

import subprocess
import sys
import time

from workbook.errors import SetupError, step
from workbook.paths import REPO_ROOT


def _setup(server: bool = True) -> None:
    from workbook.setup.liveserver import LiveServer
    from workbook.setup.services import services_up

    services_up()
    if server:
        LiveServer.default().start()


def _chromium() -> None:
    from workbook.setup.browser import chromium_ensure

    chromium_ensure()


def _nginx() -> None:
    """nginx for the deployment test (installed as root, like Chromium); without root that test
    is skipped, so nothing is needed."""
    import os

    from workbook.deploy import prerequisites_ensure

    if os.geteuid() == 0:
        step("deploy", f"nginx at {prerequisites_ensure()} (for the deployment test)")


def _run(cmd: list[str]) -> int:
    step("run", " ".join(cmd))
    return subprocess.run(cmd, cwd=REPO_ROOT).returncode


def _lint() -> int:
    code = _run([sys.executable, "-m", "ruff", "check", "course_project", "workbook", "tests"])
    step("lint", "clean" if code == 0 else f"ruff found problems (exit {code})")
    return code


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("setup", [])
    started = time.monotonic()
    try:
        if command in ("setup", "serve"):
            _setup()
        elif command == "services":
            _setup(server=False)
        elif command == "reset":
            from workbook.setup.services import main as services_main

            return services_main(["reset"])
        elif command == "stop":
            from workbook.chapters.isolation import learner_dir, learner_port
            from workbook.chapters.learner import LearnerServer
            from workbook.setup.liveserver import LiveServer

            LiveServer.default().stop()
            LearnerServer(learner_dir(), learner_port()).stop(quiet=True)
        elif command == "lab":
            _setup()
            from workbook.setup.lab import lab_run

            return lab_run(rest)
        elif command == "learner":
            from workbook.chapters.learner import main as learner_main

            return learner_main(rest)
        elif command == "lint":
            return _lint()
        elif command == "test":
            lint = _lint()  # reported now, and failing the run at the end: the tests still run
            _setup()
            _chromium()
            _nginx()
            # the slowest tests named at the end: CI's time budget is watched from its log
            code = _run([sys.executable, "-m", "pytest", "--durations=15", *rest])
            step("test", f"pytest exited {code} after {time.monotonic() - started:.0f}s")
            return code or lint
        elif command == "notebooks":
            _setup()
            from workbook.chapters.notebooks import notebooks_execute

            notebooks_execute(rest)
        elif command == "deploy":
            from workbook.deploy import main as deploy_main

            _setup(server=False)
            return deploy_main(rest)
        elif command == "bench":
            _setup()
            return _run([sys.executable, "tests/benchmarks/run.py", *rest])
        else:
            print(__doc__)
            return 2
    except SetupError as exc:
        print(f"error: {exc.problem}. Fix: {exc.fix}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
