"""Django settings: every value comes from course_project.config (environment variables / .env)."""

from __future__ import annotations

import pymysql
from django.core.exceptions import ImproperlyConfigured

from course_project.config import config_get, layer_host

# Django's sync side talks to MySQL through PyMySQL's MySQLdb shim: no compiler, no headers.
pymysql.install_as_MySQLdb()

CFG = config_get()

if not CFG.secret_key or not CFG.mysql_password:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY or QUIZ_MYSQL_PASSWORD is not set. Run `make services` once: it writes "
        "both to .env (which git ignores)."
    )

SECRET_KEY = CFG.secret_key
DEBUG = CFG.debug
# Add the machine's class-network address (for phones and other laptops) with
# DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost,192.168.1.20 (also the websocket origin check).
ALLOWED_HOSTS = list(CFG.allowed_hosts)
CSRF_TRUSTED_ORIGINS = [
    f"{scheme}://{host}"
    for host in ALLOWED_HOSTS
    for scheme in ("http", "https")
    if host not in ("*",) and not host.startswith(".")
]

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "channels",
    "common",
    "players",
    "chat",
    "answer_game",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "course_project.urls"
ASGI_APPLICATION = "course_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

# The sync ORM reads the study database with the same least-privilege user as aiomysql.
# It is here for chapter 08's comparison; the live paths use the aiomysql pools (common.db).
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": CFG.study_db,
        "USER": CFG.mysql_user,
        "PASSWORD": CFG.mysql_password,
        "HOST": CFG.mysql_host,
        "PORT": str(CFG.mysql_port),
        "OPTIONS": {"charset": "utf8mb4"},
        "CONN_MAX_AGE": 0,
    }
}

# The aiomysql pools (the guide's db1/db2), opened by the ASGI lifespan handler.
AIOMYSQL_POOLS = {
    "study": {"db": CFG.study_db},
    "game": {"db": CFG.game_db},
}
AIOMYSQL_COMMON = {
    "host": CFG.mysql_host,
    "port": CFG.mysql_port,
    "user": CFG.mysql_user,
    "password": CFG.mysql_password,
    "minsize": 1,
    "maxsize": CFG.pool_maxsize,
    "charset": "utf8mb4",
    "autocommit": True,
    "pool_recycle": 3600,
}

# The channel layer: QUIZ_CHANNEL_LAYER picks one (tests/benchmarks/bench_broadcast.py compares
# them). "inbox" (default): common.layers' InboxChannelLayer, channels_redis' keys with one batched
# reader per process. "redis": channels_redis' RedisChannelLayer, stock. "pubsub": channels_redis'
# RedisPubSubChannelLayer (at-most-once, groups in process memory).

_REDIS_HOST = {
    "address": CFG.redis_url,
    # redis-py 8 defaults socket_timeout to 5 s, as long as each of the layer's blocking pops
    # (brpop_timeout): the socket gives up just before the empty reply is due, and every idle
    # consumer would die with TimeoutError. None restores the blocking read; keepalive lets the
    # kernel notice a dead peer instead.
    "socket_timeout": None,
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "retry_on_timeout": True,
    # redis-py 8's async pool fails at once past 100 connections (MaxConnectionsError), which a
    # burst of ~100 disconnecting consumers reaches (tests/reliability).
    "max_connections": 1000,
}
_REDIS_QUEUES = {
    # A room lives for hours at most; common.resilience.Memberships adds every live member again
    # every half group_expiry, and a reconnecting player joins again.
    "group_expiry": 6 * 3600,
    "capacity": 500,
    "expiry": 30,
}
_CHANNEL_LAYER_CHOICES = {
    "redis": ("channels_redis.core.RedisChannelLayer", _REDIS_QUEUES),
    "inbox": ("common.layers.InboxChannelLayer", _REDIS_QUEUES),
    "pubsub": ("common.layers.PubSubChannelLayer", {}),
}
CHANNEL_LAYER_NAME = CFG.channel_layer
if CHANNEL_LAYER_NAME not in _CHANNEL_LAYER_CHOICES:
    raise ImproperlyConfigured(
        f"QUIZ_CHANNEL_LAYER={CHANNEL_LAYER_NAME!r}: pick one of "
        + ", ".join(sorted(_CHANNEL_LAYER_CHOICES))
    )
_backend, _queues = _CHANNEL_LAYER_CHOICES[CHANNEL_LAYER_NAME]
# With QUIZ_REDIS_SENTINELS the layer reaches the master that Redis Sentinel names (a replica it
# promoted, once the master died), with the same options: config.layer_host.
CHANNEL_LAYERS = {
    "default": {"BACKEND": _backend,
                "CONFIG": {"hosts": [layer_host(CFG, _REDIS_HOST)], **_queues}},
}

TICKET_MAX_AGE = CFG.ticket_max_age
# Frames larger than this are refused by the consumers with close code 1009.
WS_MAX_FRAME_BYTES = 4096

STATIC_URL = "static/"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django": {"level": "WARNING"}},
}
