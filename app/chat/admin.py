from django.contrib import admin

from .models import Message, Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "staff_only", "created_at")
    list_filter = ("staff_only",)
    search_fields = ("name", "title")


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
