def test_the_channel_layer_keeps_idle_blocking_reads_alive(django_ready):
    """redis-py 8 defaults socket_timeout to 5 s; channels_redis blocks longer than that."""
    from django.conf import settings

    host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    assert host["socket_timeout"] is None


def test_the_app_connects_as_the_least_privilege_user_not_root(django_ready):
    from django.conf import settings

    assert settings.AIOMYSQL_COMMON["user"] != "root"
    assert settings.DATABASES["default"]["USER"] == settings.AIOMYSQL_COMMON["user"]
