"""WebSocket URL patterns (mounted by chatsite.asgi): ``/ws/chat/<room>/`` -> ChatConsumer,
``/ws/user/`` -> NotificationConsumer (the user's notifications; chat.consumers)."""
from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/chat/<slug:room>/", consumers.ChatConsumer.as_asgi()),
    path("ws/user/", consumers.NotificationConsumer.as_asgi()),
]
