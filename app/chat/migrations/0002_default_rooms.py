"""Data migration: the public ``lobby`` room and the staff-only ``staff`` room."""
from django.db import migrations

DEFAULT_ROOMS = [
    {"name": "lobby", "title": "Lobby", "staff_only": False},
    {"name": "staff", "title": "Staff room", "staff_only": True},
]


def create_rooms(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    for room in DEFAULT_ROOMS:
        Room.objects.get_or_create(
            name=room["name"], defaults={"title": room["title"], "staff_only": room["staff_only"]}
        )


def delete_rooms(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    Room.objects.filter(name__in=[r["name"] for r in DEFAULT_ROOMS], messages__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("chat", "0001_initial")]

    operations = [migrations.RunPython(create_rooms, delete_rooms)]
