from django.urls import re_path

from . import consumers

# The guide's route. Room ids are URL-safe characters only ([A-Za-z0-9_-]), so they are also
# valid in Redis keys, log lines and channel-layer messages without any escaping.
websocket_urlpatterns = [
    re_path(r"^ws/game/controller/(?P<room_id>[A-Za-z0-9_-]{1,16})/(?P<user_id>[0-9]{1,10})/?$",
            consumers.GameConsumer.as_asgi()),
]
