"""Root URLconf: admin, auth (login/logout), health check, Centrifugo proxy hooks and chat pages."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from chat import views as chat_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", chat_views.healthz, name="healthz"),
    path("centrifugo/", include("chat.proxy_urls")),
    path("", include("chat.urls")),
]
