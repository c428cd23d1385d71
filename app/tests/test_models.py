import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError

from chat.models import Message, Room, room_name_from_channel


@pytest.mark.django_db
def test_default_rooms_from_data_migration():
    assert Room.objects.get(name="lobby").access == "users"
    assert Room.objects.get(name="staff").access == "staff"


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["general", "a", "dev-ops_2", "x" * 64])
def test_room_name_valid(name):
    Room(name=name, title="t").full_clean()


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["General", "with space", "dots.bad", "colon:bad", "é", "", "x" * 65])
def test_room_name_invalid(name):
    with pytest.raises(ValidationError):
        Room(name=name, title="t").full_clean()


def test_channel_name():
    assert Room(name="lobby").channel() == "rooms:lobby"


@pytest.mark.parametrize(
    "channel,expected",
    [("rooms:lobby", "lobby"), ("rooms:a-b_1", "a-b_1"), ("rooms:", None), ("lobby", None),
     ("other:lobby", None), ("rooms:Lobby", None), ("rooms:a:b", None), (None, None), (5, None)],
)
def test_room_name_from_channel(channel, expected):
    assert room_name_from_channel(channel) == expected


@pytest.mark.django_db
def test_allows(user, staff_user, lobby, staff_room):
    assert lobby.allows(user) and lobby.allows(staff_user)
    assert not staff_room.allows(user)
    assert staff_room.allows(staff_user)
    assert not lobby.allows(AnonymousUser())
    user.is_active = False
    assert not lobby.allows(user)


@pytest.mark.django_db
def test_visible_to(user, staff_user):
    assert list(Room.objects.visible_to(user).values_list("name", flat=True)) == ["lobby"]
    assert list(Room.objects.visible_to(staff_user).values_list("name", flat=True)) == ["lobby", "staff"]
    assert not Room.objects.visible_to(AnonymousUser()).exists()


@pytest.mark.django_db
def test_message_as_dict(user, lobby):
    m = Message.objects.create(room=lobby, user=user, text="hi")
    d = m.as_dict()
    assert d == {"id": m.pk, "seq": 1, "room": "lobby", "user": "alice", "text": "hi",
                 "created_at": m.created_at.isoformat()}
    assert "T" in d["created_at"] and d["created_at"].endswith("+00:00")


@pytest.mark.django_db
def test_messages_are_numbered_per_room_without_gaps(django_user_model):
    user = django_user_model.objects.create_user("numbered", password="pw-numbered-1234")
    lobby = Room.objects.get_or_create(name="lobby")[0]
    other = Room.objects.create(name="other")
    seqs = [Message.objects.create(room=room, user=user, text="x").seq for room in (lobby, other, lobby, lobby)]
    assert seqs == [1, 1, 2, 3]
    lobby.refresh_from_db()
    assert lobby.last_seq == 3
    # A transaction that rolls back gives its number back: the next message takes it, no gap.
    from django.db import transaction
    with pytest.raises(RuntimeError), transaction.atomic():
        Message.objects.create(room=lobby, user=user, text="rolled back")
        raise RuntimeError
    assert Message.objects.create(room=lobby, user=user, text="y").seq == 4
