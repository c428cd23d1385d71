"""``ensure_room NAME [--title TITLE] [--access LEVEL] [--group GROUP ...]``

Create or update a room idempotently for configuration management (the django role's
``django_rooms``). Declarative: the room ends with exactly the given title (default: the name),
access level (default ``users``; chat.access.LEVELS) and groups (``--group``, repeatable; none when
omitted; missing groups are created). Members and messages are never touched.

The last line of output is exactly one of ``created``, ``updated`` or ``unchanged``
(Ansible: ``changed_when: result.stdout_lines[-1] != 'unchanged'``). A bad name or level exits
non-zero with the reason.
"""
from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from chat import access
from chat.models import Room, validate_room_name


class Command(BaseCommand):
    help = "Create or update a room with its access level and groups."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="room name: lowercase letters, digits, '-' and '_'")
        parser.add_argument("--title", default=None, help="display title (default: the name)")
        parser.add_argument("--access", default=access.USERS, choices=access.LEVELS,
                            help="who may enter (default: users)")
        parser.add_argument("--group", action="append", default=[], dest="groups", metavar="GROUP",
                            help="a Django group whose members may enter a room of access 'groups' (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        name: str = options["name"]
        try:
            validate_room_name(name)
        except ValidationError as exc:
            raise CommandError(f"bad room name {name!r}: {' '.join(exc.messages)}") from None
        self.stdout.write(ensure_room(name, options["title"] or name, options["access"], options["groups"]))


@transaction.atomic
def ensure_room(name: str, title: str, level: str, group_names: list[str]) -> str:
    """Create/update room ``name`` with ``title``, access ``level`` and exactly the groups
    ``group_names`` (created when missing). Returns ``"created"``, ``"updated"`` or ``"unchanged"``."""
    groups = {Group.objects.get_or_create(name=group)[0] for group in group_names}
    room = Room.objects.select_for_update().filter(name=name).first()
    if room is None:
        room = Room.objects.create(name=name, title=title, access=level)
        room.groups.set(groups)
        return "created"
    changed = False
    if (room.title, room.access) != (title, level):
        room.title, room.access = title, level
        room.save(update_fields=["title", "access"])
        changed = True
    if set(room.groups.all()) != groups:
        room.groups.set(groups)
        changed = True
    return "updated" if changed else "unchanged"
