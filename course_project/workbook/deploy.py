"""`make deploy-demo` / `make deploy-stop`: the project deployed as production runs it, on this
machine, from the files in course_project/deploy/.

    python -m workbook deploy up        bring the stack up in the background; prints its URL
    python -m workbook deploy down      stop it and remove everything it made
    python -m workbook deploy status    what runs
    python -m workbook deploy drain N   SIGTERM node N (1 or 2), as `systemctl stop` would
    python -m workbook deploy start N   start node N again

The stack, on loopback and a network of the project's own:

    browser --https--> nginx on 127.0.0.1:8443 (http on :8080 redirects), TLS from a local CA
                        |  static files: collectstatic's output, from disk
                        +--> qz-node1 10.242.0.11:8000 --+   two hosts of their own: network
                        +--> qz-node2 10.242.0.12:8000 --+   namespaces on the bridge qzbr0,
                                                         |   each running the quiz-node unit's
     MariaDB, Redis + replica + 3 sentinels on 10.242.0.1 <+   uvicorn (as user nobody where
                                                             nobody can run this Python)

What it makes (namespaces, links, processes) is written to .run/deploy/state.json as it is
made: `down` undoes exactly that, and `up` refuses a namespace, link or port that something
else holds. Everything else lives under .run/deploy/. It needs root (network namespaces) and
Debian's nginx (installed with apt-get as root, like Chromium for the browser test).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from string import Template

from course_project.config import REPO_ROOT, RUN_DIR, config_get

from .debian import debian_install, debian_root
from .errors import SetupError, step
from .localservers import (
    LocalMariaDB,
    LocalRedis,
    LocalSentinel,
    pid_file_alive,
    port_open,
    process_alive,
)
from .services import mysql_provision

PROJECT_DIR = REPO_ROOT / "course_project"
# The install layout the unit files name: the virtualenv (here: this one) and the project.
VENV_PREFIX, APP_PREFIX = "/srv/quiz/venv", "/srv/quiz/app"


@dataclass(frozen=True)
class Plan:
    """Names, addresses and ports of the stack (QUIZ_DEPLOY_* move the ports)."""

    root: Path
    https_port: int
    http_port: int
    app_dir: Path = PROJECT_DIR  # the project deployed: its code and its deploy/ files
    prefix: str = "qz"  # of every link and namespace the stack makes
    net: str = "10.242.0"  # a /24 of the project's own; the host side is .1
    node_count: int = 2
    node_port: int = 8000
    mysql_port: int = 3390
    redis_port: int = 6390  # the first master; its replica on the next port
    sentinel_port: int = 26390  # three sentinels, on this port and the next two
    redis_master: str = "quiz"  # the name the sentinels know the master by

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br0"

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(f"{self.prefix}-node{i + 1}" for i in range(self.node_count))

    def veth(self, index: int) -> tuple[str, str]:
        """The pair joining node `index` to the bridge: (host end, namespace end)."""
        return f"{self.prefix}v{index + 1}h", f"{self.prefix}v{index + 1}n"

    @property
    def gateway(self) -> str:
        return f"{self.net}.1"

    def node_ip(self, index: int) -> str:
        return f"{self.net}.{11 + index}"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "ca.pem"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def static_root(self) -> Path:
        return self.root / "static"


def plan_get() -> Plan:
    return Plan(root=RUN_DIR / "deploy",
                https_port=int(os.environ.get("QUIZ_DEPLOY_HTTPS_PORT", "8443")),
                http_port=int(os.environ.get("QUIZ_DEPLOY_HTTP_PORT", "8080")))


# --- what was made -------------------------------------------------------------------------------


def _state(plan: Plan) -> dict:
    try:
        return json.loads(plan.state_file.read_text())
    except (OSError, ValueError):
        return {"netns": [], "links": []}


def _state_add(plan: Plan, kind: str, name: str) -> None:
    state = _state(plan)
    state.setdefault(kind, []).append(name)
    plan.root.mkdir(parents=True, exist_ok=True)
    plan.state_file.write_text(json.dumps(state))


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"'{' '.join(cmd)}' failed: {done.stderr.strip()}",
                         "read the message; `make deploy-stop` removes what the demo made")
    return done.stdout


# --- prerequisites -----------------------------------------------------------------------------


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


# --- the network: a bridge on the host, one namespace per node ---------------------------------


def net_up(plan: Plan) -> None:
    state = _state(plan)
    existing_ns = _run("ip", "netns", "list")
    if plan.bridge not in state["links"]:
        if subprocess.run(["ip", "link", "show", plan.bridge], capture_output=True).returncode == 0:
            raise SetupError(f"a network link {plan.bridge} exists that the demo did not make",
                             f"remove it (ip link del {plan.bridge}) if it is a leftover")
        taken = _routes_overlapping(plan)
        if taken:
            raise SetupError(f"this machine already routes {taken}, which overlaps the demo's "
                             f"{plan.net}.0/24", "pick another network for the demo (Plan.net)")
        _run("ip", "link", "add", plan.bridge, "type", "bridge")
        _state_add(plan, "links", plan.bridge)
        _run("ip", "addr", "add", f"{plan.gateway}/24", "dev", plan.bridge)
        _run("ip", "link", "set", plan.bridge, "up")
    for index, ns in enumerate(plan.nodes):
        if ns in state["netns"]:
            continue
        if re.search(rf"^{re.escape(ns)}\b", existing_ns, re.M):
            raise SetupError(f"a network namespace {ns} exists that the demo did not make",
                             f"remove it (ip netns del {ns}) if it is a leftover")
        host_end, ns_end = plan.veth(index)
        _run("ip", "netns", "add", ns)
        _state_add(plan, "netns", ns)
        _run("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        _state_add(plan, "links", host_end)
        _run("ip", "link", "set", ns_end, "netns", ns)
        _run("ip", "link", "set", host_end, "master", plan.bridge)
        _run("ip", "link", "set", host_end, "up")
        _run("ip", "-n", ns, "addr", "add", f"{plan.node_ip(index)}/24", "dev", ns_end)
        _run("ip", "-n", ns, "link", "set", ns_end, "up")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
    step("deploy", f"network: bridge {plan.bridge} {plan.gateway}/24, nodes "
                   + ", ".join(f"{ns} {plan.node_ip(i)}" for i, ns in enumerate(plan.nodes)))


def _routes_overlapping(plan: Plan) -> str | None:
    """A route of this machine into the demo's /24 (a VPN, a container network), if any."""
    import ipaddress

    ours = ipaddress.ip_network(f"{plan.net}.0/24")
    for line in _run("ip", "-4", "route", "show").splitlines():
        destination = line.split()[0] if line.split() else "default"
        if destination == "default":
            continue
        try:
            if ipaddress.ip_network(destination, strict=False).overlaps(ours):
                return destination
        except ValueError:
            continue
    return None


def net_down(plan: Plan) -> None:
    state = _state(plan)
    for ns in state.get("netns", []):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    for link in reversed(state.get("links", [])):
        subprocess.run(["ip", "link", "del", link], capture_output=True)  # a veth takes its peer
    plan.state_file.unlink(missing_ok=True)


# --- TLS: a certificate authority of the demo's own ---------------------------------------------


def tls_make(plan: Plan) -> tuple[Path, Path]:
    """A local CA (ca.pem, the file clients trust) and nginx's certificate for 127.0.0.1 (an
    address, not a name: browsers apply no HSTS to it), made once with trustme."""
    import trustme

    folder = plan.root / "tls"
    cert, key = folder / "server.pem", folder / "server.key"
    if not (cert.exists() and key.exists() and plan.ca_file.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name="Quiz workbook demo CA")
        server = ca.issue_cert("127.0.0.1")
        ca.cert_pem.write_to_path(str(plan.ca_file))
        server.cert_chain_pems[0].write_to_path(str(cert))
        server.private_key_pem.write_to_path(str(key))
        key.chmod(0o600)
    return cert, key


# --- the files of course_project/deploy, filled in for this machine -----------------------------


def node_env(plan: Plan, index: int) -> dict[str, str]:
    """The node's EnvironmentFile (deploy/node.env.example explains the keys)."""
    cfg = config_get()
    return {
        "DJANGO_SETTINGS_MODULE": "course_project.settings_deploy",
        "DJANGO_SECRET_KEY": cfg.secret_key,
        # The names browsers use (through nginx), and the node's own address, which health
        # checks (a load balancer's, the operator's) ask for directly.
        "DJANGO_ALLOWED_HOSTS": f"127.0.0.1,{plan.node_ip(index)}",
        "QUIZ_STATIC_ROOT": str(plan.static_root),
        "QUIZ_MYSQL_HOST": plan.gateway,
        "QUIZ_MYSQL_PORT": str(plan.mysql_port),
        "QUIZ_MYSQL_USER": cfg.mysql_user,
        "QUIZ_MYSQL_PASSWORD": cfg.mysql_password,
        # The password and database; the host is whichever server the sentinels name master.
        "QUIZ_REDIS_URL": f"redis://:{redis_password(plan)}@{plan.gateway}:{plan.redis_port}/0",
        "QUIZ_REDIS_SENTINELS": ",".join(f"{s.host}:{s.port}" for s in _sentinels(plan)),
        "QUIZ_REDIS_MASTER": plan.redis_master,
        "QUIZ_NODE_HOST": plan.node_ip(index),
        "QUIZ_NODE_PORT": str(plan.node_port),
        "QUIZ_PROXY_IPS": plan.gateway,
        "QUIZ_NODE_MAX_CONNECTIONS": "4000",
        "QUIZ_NODE_WORKERS": "2",
    }


def unit_render(plan: Plan, name: str) -> str:
    """A unit file of the project's deploy/systemd with this machine's paths for /srv/quiz."""
    text = (plan.app_dir / "deploy" / "systemd" / name).read_text()
    return text.replace(VENV_PREFIX, sys.prefix).replace(APP_PREFIX, str(plan.app_dir))


def unit_exec(unit_text: str, env: dict[str, str]) -> list[str]:
    """The unit's ExecStart as argv, with ${VAR} expanded from `env` as systemd does."""
    joined = re.sub(r"\\\n\s*", " ", unit_text)
    line = next(ln for ln in joined.splitlines() if ln.startswith("ExecStart="))
    words = shlex.split(line.removeprefix("ExecStart="))
    return [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], w) for w in words]


def nginx_render(plan: Plan, cert: Path, key: Path) -> Path:
    """deploy/nginx/quiz.conf.template filled in, inside a main nginx.conf of the demo's own."""
    folder = plan.root / "nginx"
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    cap = node_env(plan, 0)["QUIZ_NODE_MAX_CONNECTIONS"]
    upstreams = "\n".join(f"    server {plan.node_ip(i)}:{plan.node_port} max_fails=1 "
                          f"fail_timeout=5s max_conns={cap};" for i in range(len(plan.nodes)))
    values = {
        "upstream_servers": upstreams, "server_name": "127.0.0.1",
        "http_listen": f"127.0.0.1:{plan.http_port}",
        "https_listen": f"127.0.0.1:{plan.https_port}",
        "https_port_suffix": f":{plan.https_port}", "tls_certificate": str(cert),
        "tls_certificate_key": str(key), "static_root": str(plan.static_root),
    }
    template = (plan.app_dir / "deploy" / "nginx" / "quiz.conf.template").read_text()
    site = Template(template).safe_substitute(values)
    left = sorted(set(re.findall(r"\$\{(\w+)\}", site)))
    if left:
        raise SetupError(f"the nginx template names values the demo does not set: {left}",
                         "add them to workbook.deploy.nginx_render")
    (folder / "quiz.conf").write_text(site)
    main = folder / "nginx.conf"
    main.write_text(
        "# The demo's nginx: its own pid, logs and temp files under .run/deploy/nginx.\n"
        f"pid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'logs' / 'error.log'} warn;\n"
        "worker_processes 1;\n"
        "user nobody nogroup;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        f"    access_log {folder / 'logs' / 'access.log'};\n"
        f"    client_body_temp_path {folder / 'tmp'};\n"
        f"    proxy_temp_path {folder / 'tmp'};\n"
        f"    include {folder / 'quiz.conf'};\n"
        "}\n")
    (folder / "tmp").mkdir(exist_ok=True)
    return main


# --- processes ------------------------------------------------------------------------------------


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
        can run this Python (else as root). The user it runs as."""
        if self.pid() is not None:
            return "running"
        env = node_env(self.plan, self.index)
        argv = unit_exec(unit_render(self.plan, "quiz-node.service"), env)
        user = "nobody" if nobody_can_run_python() else "root"
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


def client_env(plan: Plan) -> dict[str, str]:
    """The environment of a process that uses the stack as its clients do (through nginx, over
    TLS, trusting the demo's CA) and reads its databases as the tests do: workbook.client,
    the bots and the live tests then talk to the stack."""
    return {
        "QUIZ_PUBLIC_URL": plan.url,
        "SSL_CERT_FILE": str(plan.ca_file),
        "QUIZ_HOST": plan.node_ip(0), "QUIZ_PORT": str(plan.node_port),  # its health, directly
        "QUIZ_MYSQL_HOST": plan.gateway, "QUIZ_MYSQL_PORT": str(plan.mysql_port),
        **{key: node_env(plan, 0)[key]
           for key in ("QUIZ_REDIS_URL", "QUIZ_REDIS_SENTINELS", "QUIZ_REDIS_MASTER")},
    }


def mysql_query(plan: Plan, sql: str, params: tuple = ()) -> list[tuple]:
    """A query on the stack's MariaDB as its admin (over the socket, on this host only)."""
    import pymysql

    socket_path = str(_mysql(plan).root / "mysqld.sock")
    with pymysql.connect(unix_socket=socket_path, user="root", password="",
                         autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


def https_get(plan: Plan, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET through nginx, trusting only the demo's CA."""
    context = ssl.create_default_context(cafile=str(plan.ca_file))
    request = urllib.request.Request(plan.url + path)
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# --- the whole stack ----------------------------------------------------------------------------


def redis_password(plan: Plan) -> str:
    """The data servers' requirepass, made once for the stack (a file of mode 0600)."""
    path = plan.root / "redis.password"
    if not path.exists():
        plan.root.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def _mysql(plan: Plan) -> LocalMariaDB:
    return LocalMariaDB(plan.root / "mysql", plan.mysql_port, host=plan.gateway)


def _redises(plan: Plan) -> list[LocalRedis]:
    """The two data servers: the first master and its replica (which may be master by now)."""
    first = (plan.gateway, plan.redis_port)
    return [LocalRedis(plan.root / f"redis-{port}", port, host=plan.gateway,
                       replicaof=None if port == plan.redis_port else first,
                       password=redis_password(plan))
            for port in (plan.redis_port, plan.redis_port + 1)]


def _sentinels(plan: Plan) -> list[LocalSentinel]:
    return [LocalSentinel(plan.root / f"sentinel-{port}", port, (plan.gateway, plan.redis_port),
                          name=plan.redis_master, host=plan.gateway,
                          password=redis_password(plan))
            for port in range(plan.sentinel_port, plan.sentinel_port + 3)]


def redis_master(plan: Plan) -> tuple[str, int] | None:
    """Where the sentinels say the master is (the first that answers), or None."""
    import redis

    for sentinel in _sentinels(plan):
        try:
            client = redis.Redis(sentinel.host, sentinel.port, socket_timeout=1)
            found = client.sentinel_get_master_addr_by_name(plan.redis_master)
        except redis.RedisError:
            continue
        if found:
            host = found[0].decode() if isinstance(found[0], bytes) else str(found[0])
            return host, int(found[1])
    return None


def redis_master_kill(plan: Plan, timeout: float = 30.0) -> tuple[float, tuple[str, int]]:
    """SIGKILL the current master (as a crash would); the seconds until the sentinels name
    another one, and that one. The killed server starts again as a replica of the new master
    afterwards (redis_restore)."""
    before = redis_master(plan)
    victim = next(r for r in _redises(plan) if (r.host, r.port) == before)
    began = time.monotonic()
    victim.kill()
    while time.monotonic() - began < timeout:
        now = redis_master(plan)
        if now is not None and now != before:
            return time.monotonic() - began, now
        time.sleep(0.05)
    raise SetupError(f"the sentinels named no new master within {timeout:.0f} s",
                     f"read {plan.root}/sentinel-*/sentinel.log")


def redis_restore(plan: Plan) -> None:
    """Start a data server that is down again, as a replica of the current master."""
    master = redis_master(plan)
    for server in _redises(plan):
        if not server.running():
            server.replicaof = master
            server.start()


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
    plan.root.mkdir(parents=True, exist_ok=True)
    net_up(plan)
    cert, key = tls_make(plan)
    step("deploy", f"TLS: a local CA ({plan.ca_file.relative_to(REPO_ROOT)}) and a certificate "
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
                       f"{user} (log {node.log_file.relative_to(REPO_ROOT)})")
        if user == "root":
            step("deploy", f"  (as root: user nobody cannot run {sys.base_prefix}; a server "
                           "puts the virtualenv in /srv/quiz/venv, readable by its user)")
    conf = nginx_render(plan, cert, key)
    nginx_start(plan, nginx, conf)
    status, _, body = https_get(plan, "/api/health")
    if status != 200:
        raise SetupError(f"nginx answered {status} for /api/health: {body[:200]!r}",
                         f"read {plan.root / 'nginx' / 'logs' / 'error.log'}")
    step("deploy", f"nginx: {plan.url} (http://127.0.0.1:{plan.http_port} redirects there)")
    step("deploy", f"up. Trust the demo's CA to open it without a warning: "
                   f"{plan.ca_file.relative_to(REPO_ROOT)} (curl --cacert, SSL_CERT_FILE, or the "
                   "browser's certificate settings)")
    print(plan.url, flush=True)


def _collectstatic(plan: Plan) -> None:
    env = {**os.environ, **node_env(plan, 0)}
    done = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                          cwd=plan.app_dir, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"collectstatic failed: {done.stderr.strip()[-300:]}",
                         "cd course_project && python manage.py collectstatic")
    count = sum(1 for p in plan.static_root.rglob("*") if p.is_file())
    step("deploy", f"static files: {count} collected into "
                   f"{plan.static_root.relative_to(REPO_ROOT)}, served by nginx")


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
