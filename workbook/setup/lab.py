"""`make lab`'s last step: JupyterLab on notebooks/, in the foreground, its chatter in a log file.

lab_run(args) starts `python -m jupyterlab` on notebooks/ (with `args` appended) with the
project's Jupyter settings (the folder jupyter/ next to this file, first on JUPYTER_CONFIG_PATH)
and Jupyter's own output appended to .run/jupyterlab.log. Once the server answers HTTP it prints,
as its last lines, one line saying to open the URL and the URL alone (with its token), and waits
until JupyterLab stops. JupyterLab runs in its own session: Ctrl+C, SIGTERM and SIGHUP reach
this process only, which stops JupyterLab with SIGTERM (Jupyter then shuts its kernels down). If
JupyterLab exits before it answers, or does not answer within START_TIMEOUT, it prints the end
of this run's log and raises SetupError.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from workbook.errors import SetupError, step
from workbook.paths import REPO_ROOT, RUN_DIR

JUPYTER_CONFIG_DIR = Path(__file__).resolve().parent / "jupyter"
LOG_FILE = RUN_DIR / "jupyterlab.log"
START_TIMEOUT = 120.0
TAIL_LINES = 20


def lab_command(args: list[str]) -> list[str]:
    """The JupyterLab command line: notebooks/, no browser without a screen, then `args`."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={REPO_ROOT / 'notebooks'}"]
    if os.geteuid() == 0:  # containers and CI-like machines run as root
        cmd.append("--allow-root")
    if not (os.environ.get("DISPLAY") or sys.platform == "darwin"):
        cmd.append("--no-browser")  # no screen here: the URL is printed instead
    return [*cmd, *args]


def lab_env() -> dict[str, str]:
    """os.environ with the project's Jupyter settings first on JUPYTER_CONFIG_PATH.

    Added, not replacing: the user's own config dirs stay on the path, after this one.
    """
    paths = os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep)
    joined = os.pathsep.join([str(JUPYTER_CONFIG_DIR), *filter(None, paths)])
    return dict(os.environ, JUPYTER_CONFIG_PATH=joined, PYTHONUNBUFFERED="1")


def lab_url(pid: int) -> str | None:
    """The URL, with its token, of the Jupyter server of process `pid` once it answers HTTP.

    None while its server-info file (jpserver-<pid>.json in Jupyter's runtime dir) is missing or
    the server does not answer yet.
    """
    from jupyter_core.paths import jupyter_runtime_dir

    try:
        info = json.loads((Path(jupyter_runtime_dir()) / f"jpserver-{pid}.json").read_text())
        with urllib.request.urlopen(f"{info['url']}api", timeout=2):
            pass
    except (OSError, ValueError, KeyError):  # missing or half-written file, no answer yet
        return None
    token = info.get("token")
    return f"{info['url']}lab" + (f"?token={token}" if token else "")


def _log_tail(start: int) -> list[str]:
    """The last TAIL_LINES lines written to LOG_FILE after byte offset `start`."""
    with open(LOG_FILE, "rb") as log:
        log.seek(start)
        return log.read().decode(errors="replace").splitlines()[-TAIL_LINES:]


def _wait_ready(proc: subprocess.Popen[bytes], log_start: int) -> str:
    """JupyterLab's URL once it answers; else print the log's end, stop it, raise SetupError."""
    deadline = time.monotonic() + START_TIMEOUT
    while proc.poll() is None and time.monotonic() < deadline:
        url = lab_url(proc.pid)
        if url:
            return url
        time.sleep(0.3)
    if proc.poll() is None:
        problem = f"JupyterLab did not answer within {START_TIMEOUT:.0f}s"
        _stop(proc)
    else:
        problem = f"JupyterLab exited during start-up (exit code {proc.returncode})"
    log_name = LOG_FILE.relative_to(REPO_ROOT)
    print(f"[lab] the end of {log_name}:", file=sys.stderr)
    for line in _log_tail(log_start):
        print(f"    {line}", file=sys.stderr)
    raise SetupError(
        f"{problem}; the end of its log is above, all of it in {log_name}",
        "fix what the log says, then run make lab again",
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop JupyterLab as its SIGTERM handler does (kernels shut down); a Ctrl+C more kills it."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()


def lab_run(args: list[str]) -> int:
    """Run JupyterLab until it stops; its exit code (0 after Ctrl+C)."""
    RUN_DIR.mkdir(exist_ok=True)
    step(
        "lab",
        f"opening JupyterLab on notebooks/, its log in {LOG_FILE.relative_to(REPO_ROOT)} "
        "(Ctrl+C stops JupyterLab; the server keeps running until `make stop`)",
    )
    log_start = LOG_FILE.stat().st_size if LOG_FILE.exists() else 0
    with open(LOG_FILE, "ab") as log:
        # Its own session: Ctrl+C reaches only this process, which stops JupyterLab with SIGTERM
        # (kernels shut down), where Jupyter would ask "Shut down this Jupyter server?" in the log.
        proc = subprocess.Popen(
            lab_command(args),
            cwd=REPO_ROOT,
            env=lab_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    for signum in (signal.SIGTERM, signal.SIGHUP):  # `kill`, or the terminal closing
        signal.signal(signum, lambda *_: proc.terminate())
    try:
        url = _wait_ready(proc, log_start)
        if "--no-browser" in proc.args:
            step("lab", "JupyterLab is ready. Open this URL in your browser:")
        else:
            step("lab", "JupyterLab is ready and opens in your browser; if not, open this URL:")
        print(url, flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        _stop(proc)
        step("lab", "JupyterLab stopped; the live server keeps running until `make stop`")
        return 0
