"""``grant_outbox ROLE``: let the PostgreSQL role ROLE (Centrifugo's outbox consumer) read and
delete the rows of the outbox table (chat.models.OUTBOX_TABLE), and nothing else.

Run by the django role after ``migrate`` (the app's database user owns the table, so it can grant).
The last line of output is exactly ``granted`` or ``unchanged`` (Ansible:
``changed_when: result.stdout_lines[-1] != 'unchanged'``). Fails with a CommandError when the
database is not PostgreSQL or ROLE does not exist (the postgresql role creates it).
"""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from chat.models import OUTBOX_TABLE

PRIVILEGES = ("SELECT", "DELETE")


class Command(BaseCommand):
    help = "Grant Centrifugo's outbox consumer role SELECT and DELETE on the outbox table."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help="the PostgreSQL role Centrifugo's outbox consumer logs in as")

    def handle(self, *args: Any, role: str, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError(f"the outbox is read by Centrifugo from PostgreSQL; this database is {connection.vendor}")
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone() is None:
                raise CommandError(f"PostgreSQL role {role!r} does not exist: converge the postgresql role first")
            cursor.execute(
                "SELECT " + ", ".join("has_table_privilege(%s, %s, %s)" for _ in PRIVILEGES),
                [value for privilege in PRIVILEGES for value in (role, OUTBOX_TABLE, privilege)],
            )
            if all(cursor.fetchone()):
                self.stdout.write("unchanged")
                return
            quoted = connection.ops.quote_name
            cursor.execute(f"GRANT {', '.join(PRIVILEGES)} ON {quoted(OUTBOX_TABLE)} TO {quoted(role)}")
        self.stdout.write("granted")
