from django.urls import re_path

from . import consumers

# Group names allow only ASCII letters, digits, '-', '_' and '.', under 100 characters. The guide's
# `\w+` also matches Chinese letters, which then fail at group_add: match only what groups allow.
websocket_urlpatterns = [
    re_path(r"^ws/chat/(?P<room_name>[A-Za-z0-9_-]{1,64})/$", consumers.ChatConsumer.as_asgi()),
]
