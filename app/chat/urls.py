from django.urls import path

from . import presence_views, token_views, views

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("rooms/join/", views.join, name="join"),
    path("rooms/<slug:name>/", views.room, name="room"),
    # One URL, dispatched by method: GET the JSON gap fill, POST a message. Two names for it.
    path("rooms/<slug:name>/messages/", views.room_messages, name="messages"),
    path("rooms/<slug:name>/messages/", views.room_messages, name="post_message"),
    path("rooms/<slug:name>/presence/", presence_views.room_presence, name="presence"),
    path("chat/token/", token_views.connection_token, name="token"),
    path("chat/token/subscription/", token_views.subscription_token, name="subscription_token"),
]
