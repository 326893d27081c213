"""One ASGI app for HTTP, websockets and lifespan.

One ProtocolTypeRouter is the app, and it lists HTTP explicitly: Channels 4 adds no HTTP handler
to a router that names none (Channels 2 did, Channels 3 did with a deprecation warning).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "course_project.settings")

# Set Django up before importing anything that touches models or settings.
django_http = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from common.middleware import TicketAuthMiddleware  # noqa: E402
from course_project.lifespan import lifespan_app  # noqa: E402
from course_project.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Static files (the browser client's JS and CSS) are served by the same process.
        "http": ASGIStaticFilesHandler(django_http),
        "websocket": AllowedHostsOriginValidator(
            TicketAuthMiddleware(URLRouter(websocket_urlpatterns))
        ),
        "lifespan": lifespan_app,
    }
)
