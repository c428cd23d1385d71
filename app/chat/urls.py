from django.urls import path

from . import views

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("rooms/join/", views.join, name="join"),
    path("rooms/<slug:name>/", views.room, name="room"),
    path("rooms/<slug:name>/messages/", views.post_message, name="post_message"),
]
