import json
import os
import subprocess
import sys

import pytest


def test_the_channel_layer_keeps_idle_blocking_reads_alive(django_ready):
    """redis-py 8 defaults socket_timeout to 5 s; channels_redis blocks longer than that."""
    from django.conf import settings

    host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    assert host["socket_timeout"] is None


def test_the_app_connects_as_the_least_privilege_user_not_root(django_ready):
    from django.conf import settings

    assert settings.AIOMYSQL_COMMON["user"] != "root"
    assert settings.DATABASES["default"]["USER"] == settings.AIOMYSQL_COMMON["user"]


SENTINEL_ENV = {"QUIZ_REDIS_SENTINELS": "127.0.0.1:26390, [::1]:26391,sentinel-3",
                "QUIZ_REDIS_MASTER": "quiz-ha", "QUIZ_REDIS_URL": "redis://:s%40cret@ignored:1/2"}


def test_sentinel_variables_are_parsed_into_addresses_and_the_urls_database():
    from course_project.config import host_ports, redis_auth

    assert host_ports(SENTINEL_ENV["QUIZ_REDIS_SENTINELS"], 26379) == (
        ("127.0.0.1", 26390), ("::1", 26391), ("sentinel-3", 26379))
    assert host_ports(" ", 26379) == ()
    assert redis_auth(SENTINEL_ENV["QUIZ_REDIS_URL"]) == {"db": 2, "password": "s@cret"}
    assert redis_auth("redis://127.0.0.1:6379") == {"db": 0}


def test_with_sentinels_the_settings_give_the_layer_a_sentinel_host_with_the_same_options():
    """settings.py, imported with the variables set (in a process of its own), hands the layer
    channels_redis' Sentinel form; its create_pool makes the Sentinel pool from it."""
    code = ("import json; from django.conf import settings; "
            "print(json.dumps(settings.CHANNEL_LAYERS['default']['CONFIG']['hosts']))")
    env = {**os.environ, **SENTINEL_ENV, "DJANGO_SETTINGS_MODULE": "course_project.settings",
           "DJANGO_SECRET_KEY": "x" * 50, "QUIZ_MYSQL_PASSWORD": "unused"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    [host] = json.loads(done.stdout)
    assert host == {
        "master_name": "quiz-ha",
        "sentinels": [["127.0.0.1", 26390], ["::1", 26391], ["sentinel-3", 26379]],
        "sentinel_kwargs": {"socket_timeout": 1.0, "socket_connect_timeout": 1.0},
        "socket_timeout": None, "socket_connect_timeout": 5, "socket_keepalive": True,
        "retry_on_timeout": True, "max_connections": 1000, "db": 2, "password": "s@cret",
    }
    from channels_redis.utils import create_pool
    from redis.asyncio.sentinel import SentinelConnectionPool

    pool = create_pool(host)  # makes no connection
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "quiz-ha"
    assert pool.max_connections == 1000
    assert {k: pool.connection_kwargs[k] for k in ("socket_timeout", "db", "password")} == {
        "socket_timeout": None, "db": 2, "password": "s@cret"}


def test_without_sentinels_the_layer_host_is_the_url_dict_itself(django_ready):
    from django.conf import settings

    from course_project.config import config_get

    host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    if config_get().redis_sentinels:
        pytest.skip("this machine's configuration sets QUIZ_REDIS_SENTINELS")
    assert host["address"] == config_get().redis_url and "master_name" not in host
