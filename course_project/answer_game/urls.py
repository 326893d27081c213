from django.urls import path, re_path

from . import views

ROOM = r"(?P<room_id>[A-Za-z0-9_-]{1,16})"

urlpatterns = [
    path("", views.play_page, name="play"),
    path("play", views.play_page),
    re_path(rf"^screen/{ROOM}$", views.screen_page, name="screen"),
    path("api/rooms", views.room_create_view),
    re_path(rf"^api/rooms/{ROOM}/results$", views.room_results_view),
    re_path(rf"^api/rooms/{ROOM}/rematch$", views.room_rematch_view),
]
