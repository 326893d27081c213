"""First step of every make target; standard library only, so it runs before anything is installed.

Creates .venv (unless a conda env is active), installs this project with pip in editable mode
when pyproject.toml changed, then hands over to `python -m workbook <command>` in that env.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIN_PYTHON = (3, 11)


def say(msg: str) -> None:
    print(f"[setup] {msg}", flush=True)


def fail(problem: str, fix: str) -> None:
    print(f"error: {problem}. Fix: {fix}", file=sys.stderr, flush=True)
    sys.exit(2)


def env_python() -> Path:
    conda = os.environ.get("CONDA_PREFIX")
    if conda and (Path(conda) / "bin" / "python").exists() and "QUIZ_USE_VENV" not in os.environ:
        return Path(conda) / "bin" / "python"
    return ROOT / ".venv" / "bin" / "python"


def ensure_env(extras: str) -> Path:
    if sys.version_info < MIN_PYTHON:
        fail(
            f"Python {sys.version.split()[0]} is too old (3.11+ needed)",
            "install python3.11 (apt-get install python3.11 python3.11-venv) and run "
            "make PYTHON=python3.11 ...",
        )
    python = env_python()
    if not python.exists():
        say("creating .venv")
        try:
            venv.EnvBuilder(with_pip=True).create(ROOT / ".venv")
        except Exception as exc:  # ensurepip missing on Debian's python3 without python3-venv
            shutil.rmtree(ROOT / ".venv", ignore_errors=True)
            fail(f"cannot create .venv ({exc})", "apt-get install python3-venv")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = python.parent.parent / ".quiz-installed"
    if not stamp.exists() or stamp.read_text() != digest:
        say(f"installing Python dependencies [{extras}] into {python.parent.parent} (pip)")
        cmd = [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-e",
            f"{ROOT}[{extras}]",
        ]
        if subprocess.run(cmd, cwd=ROOT).returncode != 0:
            fail("pip could not install the dependencies", " ".join(cmd))
        stamp.write_text(digest)
    else:
        say(f"Python dependencies up to date in {python.parent.parent}")
    return python


def main() -> None:
    command = sys.argv[1:] or ["setup"]
    python = ensure_env("test")  # one environment for the lab, the tests and the benchmarks
    os.chdir(ROOT)
    os.execv(str(python), [str(python), "-m", "workbook", *command])


if __name__ == "__main__":
    main()
