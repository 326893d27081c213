"""The stack's plan: names, addresses, ports and folders (QUIZ_DEPLOY_* move some), and the
record of what `up` made, which `down` undoes."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from workbook.errors import SetupError
from workbook.paths import PROJECT_DIR, RUN_DIR

PUBLIC_BASE = Path("/srv/quiz-demo")
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
    # Where nginx's workers (user nobody) read from, made by the demo: not the checkout, which
    # may be a private folder they cannot enter. None: /srv/quiz-demo/<prefix>.
    public_root: Path | None = None

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
    def public(self) -> Path:
        return self.public_root or PUBLIC_BASE / self.prefix

    @property
    def static_root(self) -> Path:
        """collectstatic's output, which nginx serves (a real server's /srv/quiz/static)."""
        return self.public / "static"

    @property
    def nginx_tmp(self) -> Path:
        """nginx's temporary files (request bodies, buffered replies), its workers' to write."""
        return self.public / "nginx-tmp"


def plan_get() -> Plan:
    public = os.environ.get("QUIZ_DEPLOY_PUBLIC_DIR", "").strip()
    return Plan(root=RUN_DIR / "deploy",
                https_port=int(os.environ.get("QUIZ_DEPLOY_HTTPS_PORT", "8443")),
                http_port=int(os.environ.get("QUIZ_DEPLOY_HTTP_PORT", "8080")),
                public_root=Path(public) if public else None)


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


