"""``ensure_user USERNAME (--password-env VAR | --password-stdin) [--staff] [--superuser] [--group NAME ...]``

Create or update a user idempotently for configuration management. The password is read
from the environment variable named by ``--password-env``, or from the first line of standard
input with ``--password-stdin`` -- never from argv, so it does not show up in process listings
or shell history. Prefer ``--password-stdin`` under sudo: sudo logs the environment it is
given on its command line to the journal, but never standard input. The flags are declarative: omitting
``--staff`` makes the user non-staff; ``--superuser`` implies staff. The user is always
active. ``--group NAME`` (repeatable) is declarative too: the user's Django groups become
exactly the ones named (missing groups are created), and without any ``--group`` the user is in
no group. Groups open rooms of access level ``groups`` (chat.access).

The last line of output is exactly one of ``created``, ``updated`` or ``unchanged``
(Ansible: ``changed_when: result.stdout_lines[-1] != 'unchanged'``).
"""
from __future__ import annotations

import os
import sys
from typing import Any

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction


class Command(BaseCommand):
    help = "Create or update a user; password comes from an environment variable."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--password-env",
            metavar="VAR",
            help="name of the environment variable holding the password",
        )
        source.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input",
        )
        parser.add_argument("--staff", action="store_true", help="make the user staff")
        parser.add_argument(
            "--superuser", action="store_true", help="make the user a superuser (implies --staff)"
        )
        parser.add_argument(
            "--group",
            action="append",
            default=[],
            metavar="NAME",
            help="a Django group the user is in (repeatable; the user's groups become exactly "
            "these, created if missing; none given: no groups)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("no password on standard input")
        else:
            var: str = options["password_env"]
            password = os.environ.get(var, "")
            if not password:
                raise CommandError(f"environment variable {var} is not set or empty")
        wanted = {
            "is_active": True,
            "is_staff": bool(options["staff"] or options["superuser"]),
            "is_superuser": bool(options["superuser"]),
        }
        groups = [name.strip() for name in options["group"]]
        max_length = Group._meta.get_field("name").max_length
        if any(not name or len(name) > max_length for name in groups):
            raise CommandError(f"--group needs a group name of 1 to {max_length} characters")
        self.stdout.write(ensure_user(username, password, groups=groups, **wanted))


def _set_groups(user: Any, names: set[str]) -> bool:
    """Make ``user``'s groups exactly ``names`` (creating missing groups); True if they changed."""
    if set(user.groups.values_list("name", flat=True)) == names:
        return False
    user.groups.set([Group.objects.get_or_create(name=name)[0] for name in sorted(names)])
    return True


@transaction.atomic
def ensure_user(username: str, password: str, *, groups: Iterable[str] = (), **flags: bool) -> str:
    """Create/update ``username`` with ``password``, boolean ``flags`` (model field names) and
    exactly the Django ``groups`` named (created if missing; empty: no groups).

    Returns ``"created"``, ``"updated"`` or ``"unchanged"`` (password matches via
    ``check_password``, every flag already has the wanted value and the groups are the same).
    """
    User = get_user_model()
    wanted_groups = set(groups)
    user = User.objects.select_for_update().filter(**{User.USERNAME_FIELD: username}).first()
    if user is None:
        user = User(**{User.USERNAME_FIELD: username}, **flags)
        user.set_password(password)
        user.save()
        _set_groups(user, wanted_groups)
        return "created"
    changed = _set_groups(user, wanted_groups)
    for field, value in flags.items():
        if getattr(user, field) != value:
            setattr(user, field, value)
            changed = True
    if not user.check_password(password):
        user.set_password(password)
        changed = True
    if not changed:
        return "unchanged"
    user.save()
    return "updated"
