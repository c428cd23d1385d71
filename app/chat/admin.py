"""Django admin: rooms (access level, groups, members), messages."""
from django.contrib import admin

from .models import Membership, Message, Room


class MembershipInline(admin.TabularInline):
    """The room's members; an admin adds one by user id (raw id widget: fine with many users).
    ``last_read_seq`` is the member's read mark (chat.models.Membership)."""

    model = Membership
    extra = 0
    raw_id_fields = ("user",)
    fields = ("user", "joined_at", "last_read_seq")
    readonly_fields = ("joined_at",)


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "access", "created_at")
    list_filter = ("access",)
    search_fields = ("name", "title")
    filter_horizontal = ("groups",)
    inlines = [MembershipInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("room", "user", "short_text", "created_at")
    list_filter = ("room",)
    search_fields = ("text", "user__username", "room__name")
    raw_id_fields = ("user",)
    list_select_related = ("room", "user")

    @admin.display(description="text")
    def short_text(self, obj: Message) -> str:
        return obj.text if len(obj.text) <= 60 else obj.text[:57] + "..."
