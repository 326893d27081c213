"""The ASGI entry point: one application, which routes each connection by its protocol."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "course_project.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from common.middleware import TicketAuthMiddleware  # noqa: E402
from course_project.lifespan import lifespan_app  # noqa: E402
from course_project.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": ASGIStaticFilesHandler(django_asgi_app),
    "websocket": AllowedHostsOriginValidator(
        TicketAuthMiddleware(URLRouter(websocket_urlpatterns))
    ),
    "lifespan": lifespan_app,
})
