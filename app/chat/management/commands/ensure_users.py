"""``ensure_users`` (a JSON list on standard input)

Create or update several users in one process, for configuration management (the django role's
``django_users``): one Django start-up for every user instead of one each. Standard input holds a
JSON list of objects ``{"username": str, "password": str, "staff": bool, "superuser": bool,
"groups": [str]}``; ``staff``, ``superuser`` and ``groups`` are optional (false, false, none) and
declarative, as in ``ensure_user`` (chat.management.commands.ensure_user.ensure_user applies each).
Passwords travel on standard input only, never in argv or the environment.

A password is its first line (a trailing newline of a vault value is not part of it), as with
``ensure_user --password-stdin``. Every entry is checked before any is applied: a bad entry (not an object, a key not listed above,
an empty username or password, a non-boolean flag, a group name out of range, a username given
twice) exits non-zero naming the entry, and nothing is changed.

Output: one line ``<username>: created|updated|unchanged`` per user, then a last line that is
exactly ``changed`` when any user was created or updated, else ``unchanged`` (Ansible:
``changed_when: result.stdout_lines[-1] != 'unchanged'``).
"""
from __future__ import annotations

import json
import sys
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from .ensure_user import ensure_user

#: The keys an entry may have, and the type of each.
KEYS: dict[str, type] = {"username": str, "password": str, "staff": bool, "superuser": bool, "groups": list}


def parse_users(text: str) -> list[dict[str, Any]]:
    """The entries of ``text`` (a JSON list of user objects, see the module docstring), each
    checked and normalised to ``{"username", "password", "groups": [str], "is_active",
    "is_staff", "is_superuser"}`` (``superuser`` implies staff).

    Raises CommandError naming the first bad entry (by position and username, never the password).
    """
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"standard input is not JSON: {exc}") from None
    if not isinstance(entries, list):
        raise CommandError("standard input must be a JSON list of user objects")
    max_length = Group._meta.get_field("name").max_length
    users: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise CommandError(f"entry {index} is not an object")
        where = f"entry {index} ({entry.get('username')!r})"
        unknown = sorted(set(entry) - set(KEYS))
        if unknown:
            raise CommandError(f"{where}: unknown keys {unknown}; allowed: {sorted(KEYS)}")
        for key, kind in KEYS.items():
            if key in entry and not isinstance(entry[key], kind):
                raise CommandError(f"{where}: {key} must be a {kind.__name__}")
        # The first line only, as ``ensure_user --password-stdin`` reads it: a vault value written without
        # ``encrypt_string -n`` ends in a newline that is not part of the password.
        username, password = entry.get("username", ""), entry.get("password", "").split("\n", 1)[0].rstrip("\r")
        if not username or not password:
            raise CommandError(f"{where}: username and password must be non-empty")
        if username in seen:
            raise CommandError(f"{where}: the username is given twice")
        seen.add(username)
        groups = entry.get("groups", [])
        if any(not isinstance(name, str) or not name.strip() or len(name) > max_length for name in groups):
            raise CommandError(f"{where}: groups must be names of 1 to {max_length} characters")
        superuser = entry.get("superuser", False)
        users.append({
            "username": username,
            "password": password,
            "groups": [name.strip() for name in groups],
            "is_active": True,
            "is_staff": bool(entry.get("staff", False) or superuser),
            "is_superuser": superuser,
        })
    return users


class Command(BaseCommand):
    help = "Create or update the users of a JSON list on standard input (passwords included)."

    def handle(self, *args: Any, **options: Any) -> None:
        users = parse_users(sys.stdin.read())
        changed = False
        with transaction.atomic():
            for user in users:
                username, password, groups = user.pop("username"), user.pop("password"), user.pop("groups")
                result = ensure_user(username, password, groups=groups, **user)
                changed |= result != "unchanged"
                self.stdout.write(f"{username}: {result}")
        self.stdout.write("changed" if changed else "unchanged")
