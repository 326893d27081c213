"""The deployment demo and its drills. `make deploy-demo` / `make deploy-stop`: the project
deployed as production runs it, on this machine, from the files in course_project/deploy/.

    python -m workbook deploy up        bring the stack up in the background; prints its URL
    python -m workbook deploy down      stop it and remove everything it made
    python -m workbook deploy status    what runs
    python -m workbook deploy drain N   SIGTERM node N (1 or 2), as `systemctl stop` would
    python -m workbook deploy start N   start node N again

The stack, on loopback and a network of the project's own:

    browser --https--> nginx on 127.0.0.1:8443 (http on :8080 redirects), TLS from a local CA
                        |  static files: collectstatic's output, from /srv/quiz-demo/qz/
                        +--> qz-node1 10.242.0.11:8000 --+   two hosts of their own: network
                        +--> qz-node2 10.242.0.12:8000 --+   namespaces on the bridge qzbr0,
                                                         |   each running the quiz-node unit's
     MariaDB, Redis + replica + 3 sentinels on 10.242.0.1 <+   uvicorn (as user nobody where
                                                             nobody can run this Python)

What it makes (namespaces, links, processes) is written to .run/deploy/state.json as it is
made: `down` undoes exactly that, and `up` refuses a namespace, link or port that something
else holds. What nginx's workers (user nobody) read lives where they can read it, as on a real
server: the static files and nginx's temporary files under /srv/quiz-demo/<prefix>/
(QUIZ_DEPLOY_PUBLIC_DIR moves it), never in the checkout, which may be a private folder.
Everything else lives under .run/deploy/. It needs root (network namespaces) and Debian's nginx
(installed with apt-get as root, like Chromium for the browser test).

The modules, in the order `up` uses them: plan.py (names, addresses, what was made), network.py
(the bridge and the namespaces), data.py (MariaDB, Redis and the sentinels), files.py (TLS and
course_project/deploy's files filled in), processes.py (the nodes and nginx), stack.py (up,
down, status, the command line); drills.py breaks the running stack on purpose.
"""

from workbook.deploy.data import mysql_query, redis_master, redis_master_kill, redis_restore
from workbook.deploy.files import nginx_render, node_env, tls_make, unit_exec, unit_render
from workbook.deploy.plan import Plan, plan_get
from workbook.deploy.processes import (
    Node,
    health_at,
    nginx_apply,
    node_health,
    prerequisites_ensure,
)
from workbook.deploy.stack import client_env, down, https_get, status, up

__all__ = [
    "Node", "Plan", "client_env", "down", "health_at", "https_get", "mysql_query", "nginx_apply",
    "nginx_render", "node_env", "node_health", "plan_get", "prerequisites_ensure", "redis_master",
    "redis_master_kill", "redis_restore", "status", "tls_make", "unit_exec", "unit_render", "up",
]
