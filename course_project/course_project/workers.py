"""gunicorn's worker class for an app node (deploy/systemd/quiz-node-gunicorn.service).

uvicorn-worker's UvicornWorker takes gunicorn's own settings (bind, workers, timeouts,
forwarded-allow-ips); what only uvicorn knows comes from CONFIG_KWARGS: here the same websocket
and lifespan settings as the bare uvicorn node's command line (deploy/systemd/quiz-node.service).
"""

from __future__ import annotations

import os
from typing import Any

from uvicorn_worker import UvicornWorker


class QuizUvicornWorker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "auto",
        "http": "auto",
        "ws": "websockets-sansio",
        "ws_max_size": 4096,
        "ws_per_message_deflate": False,
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
        "lifespan": "on",
        "timeout_graceful_shutdown": 10,
        "limit_concurrency": int(os.environ.get("QUIZ_NODE_MAX_CONNECTIONS", "4000")),
    }
