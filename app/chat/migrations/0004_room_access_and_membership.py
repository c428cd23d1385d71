"""Room access levels and members.

- ``Room.access`` (``users`` | ``groups`` | ``staff`` | ``superuser``, chat.access) and
  ``Room.groups`` replace ``Room.staff_only``. Existing rooms keep their meaning: a staff-only
  room becomes ``staff``, every other room ``users`` (:func:`access_for`).
- ``Membership`` (room, user, joined_at, last_read_seq) and ``Room.members`` through it.

Reverse: ``staff_only`` comes back; a ``users`` room is not staff-only, a room of any other
level is (:func:`staff_only_for`: ``groups`` and ``superuser`` rooms become staff-only rather
than open to everyone, the narrower of the two meanings ``staff_only`` can express).
"""
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

USERS, GROUPS, STAFF, SUPERUSER = "users", "groups", "staff", "superuser"


def access_for(staff_only: bool) -> str:
    """The access level of a room that had ``staff_only``: ``"staff"`` or ``"users"``."""
    return STAFF if staff_only else USERS


def staff_only_for(access: str) -> bool:
    """``staff_only`` for a room of level ``access`` when migrating back: False only for ``users``."""
    return access != USERS


def staff_only_to_access(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    for staff_only in (False, True):
        Room.objects.filter(staff_only=staff_only).update(access=access_for(staff_only))


def access_to_staff_only(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    for level in set(Room.objects.values_list("access", flat=True)):
        Room.objects.filter(access=level).update(staff_only=staff_only_for(level))


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("chat", "0003_outbox_and_room_seq"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="room",
            name="access",
            field=models.CharField(
                choices=[("users", "Every signed-in user"), ("groups", "Members of the room's groups"),
                         ("staff", "Staff"), ("superuser", "Superusers")],
                default="users", max_length=16),
        ),
        migrations.AddField(
            model_name="room",
            name="groups",
            field=models.ManyToManyField(blank=True, related_name="chat_rooms", to="auth.group"),
        ),
        migrations.CreateModel(
            name="Membership",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("joined_at", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ("last_read_seq", models.BigIntegerField(default=0)),
                ("room", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                           related_name="memberships", to="chat.room")),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                           related_name="chat_memberships", to=settings.AUTH_USER_MODEL)),
            ],
        ),
        migrations.AddField(
            model_name="room",
            name="members",
            field=models.ManyToManyField(blank=True, related_name="chat_rooms", through="chat.Membership",
                                         to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name="membership",
            constraint=models.UniqueConstraint(fields=("room", "user"), name="chat_membership_room_user_unique"),
        ),
        migrations.RunPython(staff_only_to_access, access_to_staff_only),
        migrations.RemoveField(
            model_name="room",
            name="staff_only",
        ),
    ]
