"""ASGI lifespan: open the aiomysql pools on uvicorn's running loop, close them on shutdown.

Channels' ProtocolTypeRouter has no lifespan handling of its own; this small app is its
"lifespan" entry, so `uvicorn --lifespan on` starts and stops cleanly.
"""

from __future__ import annotations

import logging

from common.db import pools_close, pools_open

log = logging.getLogger(__name__)

_startup_hooks: list = []
_shutdown_hooks: list = []


def on_startup(fn):
    _startup_hooks.append(fn)
    return fn


def on_shutdown(fn):
    _shutdown_hooks.append(fn)
    return fn


async def lifespan_app(scope, receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                pools = await pools_open()
                for hook in _startup_hooks:
                    await hook()
            except Exception as exc:
                log.exception("startup failed")
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            log.info("aiomysql pools open: %s", ", ".join(sorted(pools)))
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for hook in reversed(_shutdown_hooks):
                try:
                    await hook()
                except Exception:
                    log.exception("shutdown hook failed")
            await pools_close()
            await send({"type": "lifespan.shutdown.complete"})
            return
