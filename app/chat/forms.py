"""Forms for joining a room by name and (no-JavaScript fallback) posting a message."""
from __future__ import annotations

from django import forms
from django.conf import settings

from .models import ROOM_NAME_MAX_LENGTH, validate_room_name

RESERVED_ROOM_NAMES = frozenset({"join"})  # would clash with /rooms/join/


class JoinRoomForm(forms.Form):
    name = forms.CharField(
        max_length=ROOM_NAME_MAX_LENGTH,
        validators=[validate_room_name],
        label="Room name",
        widget=forms.TextInput(attrs={"placeholder": "e.g. general", "autocomplete": "off"}),
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if name in RESERVED_ROOM_NAMES:
            raise forms.ValidationError(f"'{name}' is a reserved name.")
        return name


class MessageForm(forms.Form):
    text = forms.CharField(strip=True)

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        limit = settings.CHAT_MESSAGE_MAX_LENGTH
        if len(text) > limit:
            raise forms.ValidationError(f"Message too long (max {limit} characters).")
        return text
