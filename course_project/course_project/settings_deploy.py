"""Settings of an app node behind the TLS proxy (DJANGO_SETTINGS_MODULE on the node): the
project's settings, plus what HTTPS behind nginx needs. `manage.py check --deploy` is clean with
them."""

from __future__ import annotations

import os

from .settings import *  # noqa: F403 (every other setting is the project's own)

DEBUG = False
# nginx terminates TLS and says so in X-Forwarded-Proto, on every request it passes on (a
# browser cannot slip in its own). request.is_secure() believes that header; only nginx and the
# operator's health checks reach a node. (uvicorn's --proxy-headers also takes the scheme from
# it, from nginx's address only.)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# A request that reached a node as plain http is redirected, except the health check, which the
# operator (and the deploy test) ask the nodes directly, past nginx.
SECURE_SSL_REDIRECT = True
SECURE_REDIRECT_EXEMPT = [r"^api/health$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# An hour: long enough to matter, short enough that a mistake (a host that must serve plain http
# again) heals itself. A site that will stay on https raises it to a year and adds preload.
SECURE_HSTS_SECONDS = 3600
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# Preloading is a promise to browser vendors' list that the domain serves https only, for good:
# not something a classroom server should promise by default. W021 says it is not set.
SECURE_HSTS_PRELOAD = False
SILENCED_SYSTEM_CHECKS = ["security.W021"]
CSRF_TRUSTED_ORIGINS = [f"https://{host}" for host in ALLOWED_HOSTS  # noqa: F405
                        if host != "*" and not host.startswith(".")]
# collectstatic writes here and nginx serves it; the nodes never serve static files.
STATIC_ROOT = os.environ.get("QUIZ_STATIC_ROOT", "/srv/quiz/static")
