"""``publish CHANNEL JSON`` -- broadcast a JSON object with chat.realtime.publish.

Example: ``chatsite-manage publish rooms:lobby '{"text": "maintenance at 18:00"}'``.
CHANNEL must be ``rooms:<name>``; JSON must be an object. Prints ``published`` on success;
exits with an error (CommandError) for bad arguments or when a backend fails.
"""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat import realtime
from chat.management import json_object


class Command(BaseCommand):
    help = "Publish a JSON object to a room (rooms:<name>) on the configured realtime backend(s)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("channel", help="rooms:<name>")
        parser.add_argument("data", metavar="JSON", help="a JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        data = json_object(options["data"], "JSON")
        try:
            realtime.publish(options["channel"], data)
        except (ValueError, realtime.RealtimeError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("published")
