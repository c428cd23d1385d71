"""ASGI entry point (daphne/uvicorn): Django HTTP plus the Channels WebSocket endpoint.

``http``: the Django app. ``websocket``: Origin checked against ALLOWED_HOSTS (a missing Origin
header is refused, so non-browser clients must send one), then ``?token=`` JWT auth
(chat.middleware), then session-cookie auth (chat.session_auth: SECRET_KEY_FALLBACKS honoured, the session never
cycled), then ``/ws/chat/<room>/`` and ``/ws/user/``
(chat.routing).
The gunicorn (WSGI) deployment serves HTTP only; realtime then goes through Centrifugo.
"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

# Set up Django (apps registry) before importing anything that imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from chat.middleware import JwtQueryAuthMiddleware  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402
from chat.session_auth import SessionAuthMiddlewareStack  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            JwtQueryAuthMiddleware(SessionAuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
