"""The whole stack: `up`, `down` and `status`, and the command line `python -m workbook deploy`
(the package's docstring draws the stack)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from workbook.deploy.data import _mysql, _redises, _sentinels, redis_master
from workbook.deploy.files import nginx_render, node_env, tls_make
from workbook.deploy.network import net_down, net_up
from workbook.deploy.plan import Plan, _state, plan_get
from workbook.deploy.processes import (
    Node,
    _ours,
    nginx_start,
    nginx_stop,
    nobody_can_read,
    nobody_can_run_python,
    prerequisites_ensure,
    public_ready,
)
from workbook.errors import SetupError, step
from workbook.paths import REPO_ROOT
from workbook.setup.services import mysql_provision


def client_env(plan: Plan) -> dict[str, str]:
    """The environment of a process that uses the stack as its clients do (through nginx, over
    TLS, trusting the demo's CA) and reads its databases as the tests do: workbook.chapters.client,
    the bots and the live tests then talk to the stack."""
    return {
        "QUIZ_PUBLIC_URL": plan.url,
        "SSL_CERT_FILE": str(plan.ca_file),
        "QUIZ_HOST": plan.node_ip(0), "QUIZ_PORT": str(plan.node_port),  # its health, directly
        "QUIZ_MYSQL_HOST": plan.gateway, "QUIZ_MYSQL_PORT": str(plan.mysql_port),
        **{key: node_env(plan, 0)[key]
           for key in ("QUIZ_REDIS_URL", "QUIZ_REDIS_SENTINELS", "QUIZ_REDIS_MASTER")},
    }


def https_get(plan: Plan, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET through nginx, trusting only the demo's CA."""
    context = ssl.create_default_context(cafile=str(plan.ca_file))
    request = urllib.request.Request(plan.url + path)
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _shown(path: Path) -> str:
    """A path as the demo prints it: from the checkout's root when it lies inside."""
    return str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)


def up(plan: Plan) -> None:
    """Bring the stack up; if any step fails, everything started so far is stopped and removed
    (down) before the error goes on."""
    try:
        _up(plan)
    except BaseException:
        step("deploy", "stopping what was started")
        down(plan)
        raise


def _up(plan: Plan) -> None:
    nginx = prerequisites_ensure()
    public_ready(plan)
    plan.root.mkdir(parents=True, exist_ok=True)
    net_up(plan)
    cert, key = tls_make(plan)
    step("deploy", f"TLS: a local CA ({_shown(plan.ca_file)}) and a certificate "
                   "for 127.0.0.1")
    mysql = _mysql(plan)
    mysql.start()
    for server in [*_redises(plan), *_sentinels(plan)]:
        server.start()
    # The app user may log in from the nodes' network only (and the admin stays on the host).
    mysql_provision(mysql.host, mysql.port, admin_user="root", admin_password="",
                    app_hosts=(f"{plan.net}.%",), unix_socket=str(mysql.root / "mysqld.sock"))
    master = redis_master(plan)
    step("deploy", f"MariaDB {mysql.host}:{mysql.port}; Redis master {master[0]}:{master[1]} "
                   f"with a replica and 3 sentinels from :{plan.sentinel_port} (the demo's own)")
    _collectstatic(plan)
    for index in range(len(plan.nodes)):
        node = Node(plan, index)
        user = node.start()
        step("deploy", f"{node.name}: uvicorn at {plan.node_ip(index)}:{plan.node_port} as "
                       f"{user} (log {_shown(node.log_file)})")
        if user == "root":
            cannot = (f"run {sys.base_prefix}" if not nobody_can_run_python()
                      else f"read {plan.app_dir}")
            step("deploy", f"  (as root: user nobody cannot {cannot}; a server puts the project "
                           "in /srv/quiz/app and its virtualenv in /srv/quiz/venv, readable by its "
                           "user)")
    conf = nginx_render(plan, cert, key)
    nginx_start(plan, nginx, conf)
    status, _, body = https_get(plan, "/api/health")
    if status != 200:
        raise SetupError(f"nginx answered {status} for /api/health: {body[:200]!r}",
                         f"read {plan.root / 'nginx' / 'logs' / 'error.log'}")
    step("deploy", f"nginx: {plan.url} (http://127.0.0.1:{plan.http_port} redirects there)")
    step("deploy", f"up. Trust the demo's CA to open it without a warning: "
                   f"{_shown(plan.ca_file)} (curl --cacert, SSL_CERT_FILE, or the "
                   "browser's certificate settings)")
    print(plan.url, flush=True)


def _collectstatic(plan: Plan) -> None:
    """The static files, collected where nginx serves them from and readable by its workers
    (Django makes the files 0644, but its folders follow this process's umask)."""
    env = {**os.environ, **node_env(plan, 0)}
    done = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                          cwd=plan.app_dir, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"collectstatic failed: {done.stderr.strip()[-300:]}",
                         "cd course_project && python manage.py collectstatic")
    files = [p for p in plan.static_root.rglob("*") if p.is_file()]
    for path in [plan.static_root, *plan.static_root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    if files and not nobody_can_read(files[0]):
        raise SetupError(f"nginx's workers (user nobody) cannot read {files[0]}",
                         f"chmod -R a+rX {plan.public}")
    step("deploy", f"static files: {len(files)} collected into {plan.static_root}, served by "
                   "nginx")


def down(plan: Plan) -> None:
    """Stop everything the demo started and remove what it made; quiet if nothing runs. The
    nodes first (they close their websockets with 1012), then nginx, which then has none left
    to wait for."""
    for index in range(len(plan.nodes)):
        Node(plan, index).stop(timeout=15)
    nginx_stop(plan)
    servers = [*_sentinels(plan), *_redises(plan), _mysql(plan)]
    for stop in (server.stop for server in servers):
        try:
            stop()
        except SetupError as exc:
            step("deploy", f"stopping: {exc.problem}")
    # Redis keeps nothing on disk, but a sentinel rewrites its config with who is master now:
    # the next stack starts from the first master again, so its sentinels must forget that.
    for server in [*_sentinels(plan), *_redises(plan)]:
        shutil.rmtree(server.root, ignore_errors=True)
    for folder in (plan.static_root, plan.nginx_tmp):  # the demo's; the folder around them may
        shutil.rmtree(folder, ignore_errors=True)      # be someone's (QUIZ_DEPLOY_PUBLIC_DIR)
    for folder in (plan.public, plan.public.parent):  # each only if empty
        with contextlib.suppress(OSError):
            folder.rmdir()
    net_down(plan)
    step("deploy", "stopped; nothing of the demo runs")


def status(plan: Plan) -> dict:
    state = _state(plan)
    return {
        "netns": state.get("netns", []), "links": state.get("links", []),
        "nodes": {Node(plan, i).name: Node(plan, i).pid() for i in range(len(plan.nodes))},
        "nginx": _ours(plan.root / "nginx" / "nginx.pid", "nginx"),
        "mysql": _mysql(plan).running(),
        "redis": [r.port for r in [*_redises(plan), *_sentinels(plan)] if r.running()],
    }


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m workbook deploy")
    parser.add_argument("command", choices=["up", "down", "status", "drain", "start"])
    parser.add_argument("node", nargs="?", type=int, help="1 or 2 (drain, start)")
    args = parser.parse_args(argv)
    plan = plan_get()
    try:
        if args.command == "up":
            up(plan)
        elif args.command == "down":
            down(plan)
        elif args.command == "status":
            print(json.dumps(status(plan), indent=1))
        else:
            if args.node not in range(1, len(plan.nodes) + 1):
                parser.error(f"name a node: 1-{len(plan.nodes)}")
            node = Node(plan, args.node - 1)
            if args.command == "drain":
                took = node.stop()
                step("deploy", f"{node.name} drained in {took:.1f} s" if took is not None
                     else f"{node.name} was not running")
            else:
                user = node.start()
                step("deploy", f"{node.name} started as {user} (pid {node.pid()})")
    except SetupError as exc:
        print(f"error: {exc.problem}. Fix: {exc.fix}", file=sys.stderr)
        return 2
    return 0
