"""The project's HTTP routes."""

from django.urls import include, path

from common.views import health
from players.views import player_create_view, user_detail

urlpatterns = [
    path("api/health", health),
    path("api/user", user_detail),
    path("api/players", player_create_view),
    path("", include("answer_game.urls")),
]

handler404 = "common.views.not_found"
