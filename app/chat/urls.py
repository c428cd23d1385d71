from django.urls import path

from . import membership_views, presence_views, token_views, views

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("rooms/join/", views.join, name="join"),
    path("rooms/<slug:name>/", views.room, name="room"),
    # One URL, dispatched by method: GET the JSON gap fill, POST a message. Two names for it.
    path("rooms/<slug:name>/messages/", views.room_messages, name="messages"),
    path("rooms/<slug:name>/messages/", views.room_messages, name="post_message"),
    path("rooms/<slug:name>/presence/", presence_views.room_presence, name="presence"),
    path("rooms/<slug:name>/join/", membership_views.join_room, name="join_room"),
    path("rooms/<slug:name>/leave/", membership_views.leave_room, name="leave_room"),
    path("rooms/<slug:name>/read/", membership_views.mark_read, name="read"),
    path("chat/token/", token_views.connection_token, name="token"),
    path("chat/token/subscription/", token_views.subscription_token, name="subscription_token"),
]
