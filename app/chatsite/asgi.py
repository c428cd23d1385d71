"""ASGI entry point (not used by the gunicorn deployment; realtime is handled by Centrifugo)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

application = get_asgi_application()
