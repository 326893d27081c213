"""The stack's processes: the app nodes (the quiz-node unit's ExecStart in each namespace) and
nginx, started, reloaded and stopped as an operator would; and what they need installed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from workbook.deploy.files import nginx_render, node_env, tls_make, unit_exec, unit_render
from workbook.deploy.plan import Plan, _run
from workbook.errors import SetupError, step
from workbook.setup.debian import debian_install, debian_root
from workbook.setup.localservers import pid_file_alive, port_open, process_alive


def nginx_path() -> str | None:
    return shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin")


def prerequisites_ensure() -> str:
    """Root and nginx (installed from Debian's packages as root); nginx's path."""
    if os.geteuid() != 0:
        raise SetupError("the deployment demo makes network namespaces, which needs root",
                         "sudo make deploy-demo")
    if not shutil.which("ip"):
        raise SetupError("no `ip` command (iproute2)", "apt-get install -y iproute2")
    found = nginx_path()
    if not found and debian_root():
        step("deploy", "installing Debian's nginx with apt-get (one time)")
        debian_install("nginx")
        found = nginx_path()
    if not found:
        raise SetupError("nginx is not installed", "apt-get install -y nginx")
    return found


def _ours(pid_file: Path, program: str) -> int | None:
    """The pid in `pid_file` if that process runs and is `program` (after a reboot, a stale pid
    file may name someone else's process, which must not be signalled)."""
    pid = pid_file_alive(pid_file)
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if program.encode() in cmdline else None


def node_health(plan: Plan, index: int) -> dict | None:
    """The node's /api/health, asked directly (past nginx), or None."""
    return health_at(f"http://{plan.node_ip(index)}:{plan.node_port}")


def health_at(base: str) -> dict | None:
    """/api/health of the app at `base` (a 503 'degraded' too), or None if nothing answers."""
    try:
        with urllib.request.urlopen(f"{base}/api/health", timeout=2) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:  # 503 "degraded" is still the app talking
        try:
            return json.loads(exc.read())
        except ValueError:
            return None
    except (OSError, ValueError):
        return None


DROP_PRIVILEGES = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]


def nobody_can_run_python() -> bool:
    """Whether user nobody runs this very Python (a virtualenv whose base interpreter sits under
    /root, as pyenv puts it, is unreadable for nobody, who would get another Python)."""
    probe = [*DROP_PRIVILEGES, sys.executable, "-c", "import sys; print(sys.version)"]
    done = subprocess.run(probe, capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip() == sys.version


def nobody_can_read(path: Path) -> bool:
    """Whether user nobody (nginx's workers) can read `path`: every folder above it must let
    others in, which a checkout in a private folder (mode 0700, as /root is) does not."""
    test = "-r" if path.is_file() else "-x"
    return subprocess.run([*DROP_PRIVILEGES, "test", test, str(path)]).returncode == 0


def public_ready(plan: Plan) -> None:
    """The folder nginx's workers read from (Plan.public), made and opened to them; a clear
    error, before anything starts, where they could not reach it."""
    for folder in (plan.public.parent, plan.public):
        if not folder.exists():
            folder.mkdir(parents=True)
            folder.chmod(0o755)
    if not nobody_can_read(plan.public):
        raise SetupError(f"nginx's workers (user nobody) cannot enter {plan.public}: a folder "
                         "above it is closed to other users",
                         "set QUIZ_DEPLOY_PUBLIC_DIR to a folder under /srv, or chmod o+x the "
                         "folders above it")


@dataclass
class Node:
    plan: Plan
    index: int

    @property
    def name(self) -> str:
        return self.plan.nodes[self.index]

    @property
    def pid_file(self) -> Path:
        return self.plan.root / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.plan.root / f"{self.name}.log"

    def pid(self) -> int | None:
        return _ours(self.pid_file, "uvicorn")

    def start(self, timeout: float = 40.0) -> str:
        """The quiz-node unit's ExecStart, in the node's namespace, as user nobody where nobody
        can run this Python and read the project (else as root). The user it runs as."""
        if self.pid() is not None:
            return "running"
        env = node_env(self.plan, self.index)
        argv = unit_exec(unit_render(self.plan, "quiz-node.service"), env)
        as_nobody = nobody_can_run_python() and nobody_can_read(self.plan.app_dir)
        user = "nobody" if as_nobody else "root"
        drop = DROP_PRIVILEGES if user == "nobody" else []
        cmd = ["ip", "netns", "exec", self.name, *drop, *argv]
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("QUIZ_", "DJANGO_"))}
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(cmd, cwd=self.plan.app_dir, env={**clean, **env,
                                                                "PYTHONUNBUFFERED": "1"},
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            health = node_health(self.plan, self.index)
            if health and health.get("status") == "ok":
                return user
            time.sleep(0.2)
        tail = self.log_file.read_text(errors="replace").strip().splitlines()[-3:]
        self.stop(timeout=5)
        raise SetupError(f"{self.name} did not become healthy: {' | '.join(tail)}",
                         f"read {self.log_file}")

    def stop(self, timeout: float = 30.0) -> float | None:
        """SIGTERM (a drain: uvicorn closes websockets with 1012 and hands its rooms back), then
        SIGKILL after `timeout`, as systemd's TimeoutStopSec does. Seconds it took, or None."""
        pid = self.pid()
        if pid is None:
            return None
        began = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        while process_alive(pid) and time.monotonic() - began < timeout:
            time.sleep(0.05)
        if process_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return time.monotonic() - began


def nginx_apply(plan: Plan) -> None:
    """Render the project's nginx template again and reload the running nginx with it (what an
    operator does after editing the site: `nginx -t && nginx -s reload`)."""
    cert, key = tls_make(plan)
    nginx_start(plan, prerequisites_ensure(), nginx_render(plan, cert, key))


def nginx_start(plan: Plan, nginx: str, conf: Path) -> None:
    pid_file = plan.root / "nginx" / "nginx.pid"
    if _ours(pid_file, "nginx") is not None:
        _run(nginx, "-t", "-q", "-c", str(conf), "-p", str(conf.parent))
        _run(nginx, "-c", str(conf), "-p", str(conf.parent), "-s", "reload")
        return
    for port in (plan.https_port, plan.http_port):
        if port_open("127.0.0.1", port):
            raise SetupError(f"port {port} on 127.0.0.1 is held by another program",
                             "free it, or set QUIZ_DEPLOY_HTTPS_PORT / QUIZ_DEPLOY_HTTP_PORT")
    _run(nginx, "-t", "-q", "-c", str(conf), "-p", str(conf.parent))
    _run(nginx, "-c", str(conf), "-p", str(conf.parent))


def nginx_stop(plan: Plan) -> None:
    """A graceful quit, then SIGKILL for the master and its workers (one process group)."""
    pid = _ours(plan.root / "nginx" / "nginx.pid", "nginx")
    if pid is not None:
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process_alive(pid):
            os.killpg(pid, signal.SIGKILL)


