from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from chat.models import Membership, Room


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command("ensure_room", *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.mark.django_db
def test_created_unchanged_updated_with_level_and_groups(django_user_model):
    assert run("ops", "--access", "groups", "--group", "team", "--group", "oncall")[-1] == "created"
    room = Room.objects.get(name="ops")
    assert room.access == "groups" and room.title == "ops"
    assert sorted(g.name for g in room.groups.all()) == ["oncall", "team"]
    assert run("ops", "--access", "groups", "--group", "oncall", "--group", "team")[-1] == "unchanged"

    # Declarative: the groups become exactly those given; the level and title follow.
    member = django_user_model.objects.create_user("dora", password="x")
    Membership.objects.create(room=room, user=member)
    assert run("ops", "--access", "staff", "--title", "Operations")[-1] == "updated"
    room.refresh_from_db()
    assert (room.access, room.title, room.groups.count()) == ("staff", "Operations", 0)
    assert room.members.filter(pk=member.pk).exists(), "members are never touched"
    assert Group.objects.filter(name="team").exists(), "groups themselves stay"
    assert run("ops", "--access", "staff", "--title", "Operations")[-1] == "unchanged"


@pytest.mark.django_db
def test_bad_name_and_level_are_refused():
    with pytest.raises(CommandError, match="bad room name"):
        run("Not A Name")
    with pytest.raises(CommandError, match="invalid choice"):
        run("fine", "--access", "public")
    assert not Room.objects.filter(name="fine").exists()
