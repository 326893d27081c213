from answer_game.routing import websocket_urlpatterns as game_routes
from chat.routing import websocket_urlpatterns as chat_routes

websocket_urlpatterns = [*chat_routes, *game_routes]
