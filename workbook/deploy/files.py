"""The files of course_project/deploy filled in for this machine (the nodes' environment, the
systemd units' ExecStart, nginx's site inside a main nginx.conf of the demo's own), and the TLS
certificates of a local certificate authority."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from string import Template

from course_project.config import config_get
from workbook.deploy.data import _sentinels, redis_password
from workbook.deploy.plan import APP_PREFIX, VENV_PREFIX, Plan
from workbook.errors import SetupError


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
    plan.nginx_tmp.mkdir(exist_ok=True)  # nginx makes body/ and proxy/ in it, for its workers
    plan.nginx_tmp.chmod(0o755)
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
        f"    client_body_temp_path {plan.nginx_tmp / 'body'};\n"
        f"    proxy_temp_path {plan.nginx_tmp / 'proxy'};\n"
        f"    include {folder / 'quiz.conf'};\n"
        "}\n")
    return main


