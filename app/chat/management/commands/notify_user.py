"""``notify_user USERNAME (--text TEXT | --data JSON)`` -- a server push to one user with
chat.realtime.notify_user (Centrifugo personal channel and/or Channels group ``user.<pk>``, per
CHAT_REALTIME_BACKEND).

``--text TEXT`` sends ``{"type": "notice", "text": TEXT}`` (shown in the pages' ``#notices``
list); ``--data JSON`` sends that JSON object as it is. Prints ``sent`` on success; exits
non-zero with a CommandError for an unknown user, bad JSON, or a failed send.
Example: ``chatsite-manage notify_user alice --text "maintenance at 18:00"``.
"""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat import realtime
from chat.management import json_object


class Command(BaseCommand):
    help = "Send a notification to one user (their personal channel / user.<pk> group)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        payload = parser.add_mutually_exclusive_group(required=True)
        payload.add_argument("--text", help='send {"type": "notice", "text": TEXT}')
        payload.add_argument("--data", metavar="JSON", help="send this JSON object as it is")

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        if options["data"] is not None:
            data = json_object(options["data"], "--data")
        else:
            data = {"type": "notice", "text": options["text"]}
        User = get_user_model()
        user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"unknown user {username!r}")
        try:
            realtime.notify_user(user, data)
        except realtime.RealtimeError as exc:
            raise CommandError(f"notification to {username} failed: {exc}") from None
        self.stdout.write("sent")
