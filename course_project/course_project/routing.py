from django.urls import re_path

from answer_game.routing import websocket_urlpatterns as game_routes
from chat.routing import websocket_urlpatterns as chat_routes
from common.consumers import NoRouteDenier

websocket_urlpatterns = [
    *chat_routes,
    *game_routes,
    # Last: any other path is refused before accept (HTTP 403), not crashed on (HTTP 500).
    re_path(r"", NoRouteDenier.as_asgi()),
]
