"""The chat's page: one room's messages and a box to type in, over the chat websocket."""

from django.shortcuts import render


async def room_page(request, room_name):
    """GET /chat/<room_name>/: the page; its script opens /ws/chat/<room_name>/."""
    return render(request, "chat/room.html", {"room_name": room_name})
