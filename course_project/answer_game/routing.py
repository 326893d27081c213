from django.urls import re_path

from . import consumers

# Room ids are what a channel-layer group name allows ([A-Za-z0-9_-], see services.room_id_new):
# the group `game.<room_id>` can never fail at group_add.
websocket_urlpatterns = [
    re_path(r"^ws/game/controller/(?P<room_id>[A-Za-z0-9_-]{1,16})/(?P<user_id>[0-9]{1,10})/?$",
            consumers.GameConsumer.as_asgi()),
]
