"""Centrifugo proxy endpoints, mounted under ``/centrifugo/``. Expose them to Centrifugo
only (nginx must not route ``/centrifugo/`` from the internet: the bodies are trusted)."""
from django.urls import path

from . import proxy

app_name = "centrifugo"

urlpatterns = [
    path("connect/", proxy.connect, name="connect"),
    path("subscribe/", proxy.subscribe, name="subscribe"),
    path("publish/", proxy.publish, name="publish"),
]
