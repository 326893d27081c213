from django.apps import AppConfig


class AnswerGameConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'answer_game'

    def ready(self):
        # Each uvicorn process starts its room driver (inbox + lease watcher) with the ASGI
        # lifespan, on the running loop, and hands its rooms over on shutdown.
        from common.views import HEALTH_SECTIONS
        from course_project.lifespan import on_shutdown, on_startup

        from .driver import hub, hub_start, hub_stop

        if hub_start not in _registered:
            on_startup(hub_start)
            on_shutdown(hub_stop)
            _registered.add(hub_start)
        HEALTH_SECTIONS["game"] = hub.stats


_registered = set()
