"""The project's HTTP routes."""

from django.urls import include, path, re_path

from chat.views import room_page
from common.views import health
from players.views import player_create_view, user_detail

urlpatterns = [
    path("api/health", health),
    path("api/user", user_detail),
    path("api/players", player_create_view),
    re_path(r"^chat/(?P<room_name>[A-Za-z0-9_-]{1,64})/$", room_page),
    path("", include("answer_game.urls")),
]

handler404 = "common.views.not_found"
