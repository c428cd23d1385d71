"""Room access levels (chat.access): the one rule in its three forms -- Room.allows (Python),
RoomQuerySet.visible_to (rooms a user may enter, SQL) and Room.allowed_users (users a room
admits, SQL) -- and the 0004 migration that turned ``staff_only`` into levels."""
from __future__ import annotations

import importlib

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from chat import access
from chat.models import Room
from tests.conftest import ADMITTED, LEVEL_CASES, make_user

MIGRATION = importlib.import_module("chat.migrations.0004_room_access_and_membership")


@pytest.mark.django_db
@pytest.mark.parametrize("level, kind, admitted", LEVEL_CASES)
def test_rule_in_python_and_both_sql_forms(level_rooms, level_users, level, kind, admitted):
    room, user = level_rooms[level], level_users[kind]
    assert room.allows(user) is admitted
    assert Room.objects.visible_to(user).filter(pk=room.pk).exists() is admitted
    assert room.allowed_users().filter(pk=user.pk).exists() is admitted


@pytest.mark.django_db
def test_allowed_users_lists_exactly_the_admitted(level_rooms, level_users):
    kinds = {user.pk: kind for kind, user in level_users.items()}
    for level, room in level_rooms.items():
        admitted = {kinds[pk] for pk in room.allowed_users().values_list("pk", flat=True) if pk in kinds}
        assert admitted == ADMITTED[level], level


@pytest.mark.django_db
def test_anonymous_is_never_admitted(level_rooms):
    anonymous = AnonymousUser()
    assert not any(room.allows(anonymous) for room in level_rooms.values())
    assert not Room.objects.visible_to(anonymous).exists()


@pytest.mark.django_db
def test_visible_to_lists_a_room_once_for_a_user_in_two_of_its_groups(level_rooms):
    second = Group.objects.create(name="second")
    level_rooms["groups"].groups.add(second)
    user = make_user("twice", groups=("crew", "second"))
    names = list(Room.objects.visible_to(user).values_list("name", flat=True))
    assert names.count("groups-room") == 1
    assert names == sorted(names)


@pytest.mark.django_db
def test_groups_room_without_groups_admits_superusers_only(level_users):
    room = Room.objects.create(name="empty-groups", access=access.GROUPS)
    assert [u for u in level_users.values() if room.allows(u)] == [level_users["superuser"]]


def test_level_allows_unknown_level_is_superuser_only():
    class User:
        is_authenticated = is_active = is_staff = True
        is_superuser = False

    assert not access.level_allows("public", User(), lambda: True)
    assert set(access.LEVELS) == set(access.DESCRIPTIONS) == {"users", "groups", "staff", "superuser"}


# --- the 0004 migration --------------------------------------------------------------------


@pytest.mark.parametrize("staff_only, level", [(True, "staff"), (False, "users")])
def test_migration_mapping_forward(staff_only, level):
    assert MIGRATION.access_for(staff_only) == level


@pytest.mark.parametrize("level, staff_only", [
    ("users", False), ("staff", True), ("groups", True), ("superuser", True),
])
def test_migration_mapping_backward(level, staff_only):
    assert MIGRATION.staff_only_for(level) is staff_only


@pytest.mark.django_db(transaction=True)
def test_migration_keeps_the_meaning_of_existing_rooms():
    """Back to 0003, rooms with ``staff_only``, forward again: staff-only rooms become ``staff``,
    others ``users``; and back once more: ``staff_only`` is restored."""
    executor = MigrationExecutor(connection)
    before, after = [("chat", "0003_outbox_and_room_seq")], [("chat", "0004_room_access_and_membership")]
    try:
        executor.migrate(before)
        old_room = executor.loader.project_state(before).apps.get_model("chat", "Room")
        old_room.objects.create(name="secret", staff_only=True)
        old_room.objects.create(name="open", staff_only=False)

        executor = MigrationExecutor(connection)
        executor.migrate(after)
        new_room = executor.loader.project_state(after).apps.get_model("chat", "Room")
        mine = new_room.objects.filter(name__in=["secret", "open"])
        assert dict(mine.values_list("name", "access")) == {"secret": "staff", "open": "users"}
        new_room.objects.filter(name="open").update(access="groups")

        executor = MigrationExecutor(connection)
        executor.migrate(before)
        old_room = executor.loader.project_state(before).apps.get_model("chat", "Room")
        mine = old_room.objects.filter(name__in=["secret", "open"])
        assert dict(mine.values_list("name", "staff_only")) == {"secret": True, "open": True}
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


# --- admin -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_lists_levels_and_edits_groups_and_members(client, level_rooms, level_users):
    from chat.models import Membership

    Membership.objects.create(room=level_rooms["groups"], user=level_users["crew"])
    client.force_login(level_users["superuser"])
    changelist = client.get("/admin/chat/room/", {"access__exact": "groups"})
    assert changelist.status_code == 200
    assert list(changelist.context["cl"].result_list) == [level_rooms["groups"]]
    change = client.get(f"/admin/chat/room/{level_rooms['groups'].pk}/change/").content.decode()
    assert 'name="access"' in change and "selectfilter" in change.lower()  # filter_horizontal groups
    assert 'name="memberships-0-user"' in change  # the members inline

