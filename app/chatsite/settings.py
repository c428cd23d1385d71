"""Django settings for the rtstack chat, read entirely from environment variables.

Development defaults apply only when ``DJANGO_DEBUG=1``; otherwise the secret key and
the database URL are required and missing values raise ``ImproperlyConfigured``.
See README.md for the table of variables.
"""
from __future__ import annotations

import ipaddress
import os
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from chatsite.env import env_bool, env_int, env_list
from chatsite.redis_settings import channel_layers, redis_sentinel

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. It is required unless DJANGO_DEBUG=1 "
            "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    SECRET_KEY = "django-insecure-development-only-key"

# Earlier keys, newest first, still accepted for sessions and signed values (a rotation puts the previous
# SECRET_KEY here and drops it at the next one; https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key-fallbacks).
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS")

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

if env_bool("DJANGO_BEHIND_PROXY", False):
    # Only trust forwarded headers when nginx (which sets them) is the sole way in.
    USE_X_FORWARDED_HOST = env_bool("DJANGO_USE_X_FORWARDED_HOST", True)
    _ssl_header = os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO,https")
    _parts = [p.strip() for p in _ssl_header.split(",")]
    if len(_parts) != 2 or not all(_parts):
        raise ImproperlyConfigured(
            "DJANGO_SECURE_PROXY_SSL_HEADER must look like 'HTTP_X_FORWARDED_PROTO,https'"
        )
    SECURE_PROXY_SSL_HEADER = (_parts[0], _parts[1])
    # `manage.py check --deploy` warns that SECURE_HSTS_SECONDS and SECURE_SSL_REDIRECT are unset: behind nginx
    # both are nginx's job (roles/nginx: the HTTP server only redirects to HTTPS, and every HTTPS response
    # carries Strict-Transport-Security, nginx_hsts_max_age), so Django setting them too would only duplicate
    # the header and redirect requests that never arrive over plain HTTP.
    SILENCED_SYSTEM_CHECKS = ["security.W004", "security.W008"]

SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

INSTALLED_APPS = [
    # daphne first: its runserver replaces Django's, so `manage.py runserver` serves ASGI
    # (HTTP + the Channels WebSocket endpoint) in development.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "chat",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp",
    # Login limits: failed logins counted per address and per username (chat.login_limits).
    "axes",
    # Request, response and database metrics (prometheus_client); the chat-metrics unit serves them.
    "django_prometheus",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first: times the whole request
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "chat.db_errors.DatabaseUnavailableMiddleware",  # 503 + Retry-After when the DB is down
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, but a SECRET_KEY rotation re-signs a session in place instead of cycling its key
    # (chat/session_auth.py): parallel requests and hosts not yet rolled keep the session.
    "chat.session_auth.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-axes wants to be last; only the metrics' response hook comes after it.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",  # last: sees the response's status
]

ROOT_URLCONF = "chatsite.urls"
WSGI_APPLICATION = "chatsite.wsgi.application"
ASGI_APPLICATION = "chatsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_database_url = os.environ.get("DATABASE_URL", "")
if not _database_url:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DATABASE_URL is not set. It is required unless DJANGO_DEBUG=1 "
            "(e.g. postgres://chat:secret@10.0.0.4:5432/chat or sqlite:////var/lib/chat/db.sqlite3)."
        )
    _database_url = f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)
}
# django-prometheus's wrappers of Django's own backends count queries, errors and connections.
DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace("django.db.backends.", "django_prometheus.db.backends.")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out address or username before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("DJANGO_LOGIN_FAILURE_LIMIT", 10)
# Seconds a locked-out address or username waits; failures older than that no longer count.
AXES_COOLOFF_TIME = timedelta(seconds=env_int("DJANGO_LOGIN_COOLOFF_SECONDS", 900))
AXES_USE_ATTEMPT_EXPIRATION = True
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_PARAMETERS = "chat.login_limits.lockout_parameters"
AXES_LOCKOUT_TEMPLATE = "chat/lockout.html"
# Behind nginx, the client's address is the X-Real-IP header nginx sets (never the client's own header);
# the app's ports are open to nginx only (roles/firewall).
AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_REAL_IP", "REMOTE_ADDR") if env_bool("DJANGO_BEHIND_PROXY", False) else (
    "REMOTE_ADDR",)
# Addresses or networks counted per username only (stack_login_limit_exempt), comma-separated.
CHAT_LOGIN_LIMIT_EXEMPT = env_list("DJANGO_LOGIN_LIMIT_EXEMPT")
for _network in CHAT_LOGIN_LIMIT_EXEMPT:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DJANGO_LOGIN_LIMIT_EXEMPT: {_network!r} is not an address or network ({exc})") from exc

# Content-Security-Policy (django-csp, https://django-csp.readthedocs.io/en/latest/configuration.html): scripts,
# styles and everything else from the site's own origin only, no inline script, no plugin, no framing. The
# realtime endpoints (WebSocket, HTTP-streaming, SSE, emulation) are on the same origin through nginx, which
# 'self' covers for https: and wss: alike (CSP3, https://www.w3.org/TR/CSP3/#match-url-to-source-expression);
# DJANGO_CSP_CONNECT_SRC adds the deployment's public realtime origins explicitly (the django role writes them
# from the stack topology), for browsers that predate that rule and for an endpoint on another origin.
CHAT_CSP_CONNECT_SRC = env_list("DJANGO_CSP_CONNECT_SRC")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'", *CHAT_CSP_CONNECT_SRC],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = os.environ.get("DJANGO_STATIC_URL", "/static/")
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or (str(BASE_DIR / "staticfiles") if DEBUG else None)

LOG_LEVEL = os.environ.get("DJANGO_LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # No timestamp: the systemd journal records one.
        "plain": {"format": "%(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
    },
}

# Centrifugo server HTTP API (used by the no-JavaScript form fallback to broadcast messages).
# One URL or several separated by commas (every node's: calls fail over from one to the next,
# chat.centrifugo.call_with_failover), bounded by CENTRIFUGO_API_ATTEMPTS calls and
# CENTRIFUGO_API_DEADLINE seconds per publication.
CENTRIFUGO_HTTP_API_URL = os.environ.get("CENTRIFUGO_HTTP_API_URL", "")
# The API key, then (comma-separated) the alternates tried on a 401 during a key rotation (chat.centrifugo.api_keys).
CENTRIFUGO_HTTP_API_KEY = os.environ.get("CENTRIFUGO_HTTP_API_KEY", "")
CENTRIFUGO_API_ATTEMPTS = env_int("CENTRIFUGO_API_ATTEMPTS", 6)
CENTRIFUGO_API_DEADLINE = env_int("CENTRIFUGO_API_DEADLINE", 5)

# The outbox (chat.outbox): publications written with the message, in its transaction, and
# published by Centrifugo's PostgreSQL consumer. On by default with PostgreSQL; SQLite keeps the
# direct API call. CHAT_OUTBOX_PARTITIONS must equal the consumer's num_partitions,
# CHAT_OUTBOX_NOTIFY_CHANNEL its partition_notification_channel.
_POSTGRESQL = DATABASES["default"]["ENGINE"].endswith("postgresql")
CHAT_OUTBOX = env_bool("CHAT_OUTBOX", _POSTGRESQL)
if CHAT_OUTBOX and not _POSTGRESQL:
    raise ImproperlyConfigured("CHAT_OUTBOX=1 needs a PostgreSQL DATABASE_URL (Centrifugo's outbox consumer reads PostgreSQL)")
CHAT_OUTBOX_PARTITIONS = env_int("CHAT_OUTBOX_PARTITIONS", 1)
CHAT_OUTBOX_NOTIFY_CHANNEL = os.environ.get("CHAT_OUTBOX_NOTIFY_CHANNEL", "centrifugo_outbox").strip()

# Chat behaviour.
CHAT_WEBSOCKET_PATH = os.environ.get("CHAT_WEBSOCKET_PATH", "/connection/websocket")
if not CHAT_WEBSOCKET_PATH.startswith("/"):
    raise ImproperlyConfigured("CHAT_WEBSOCKET_PATH must start with '/'")
# Centrifugo transports the browser tries, in order (centrifuge-js falls back to the next only
# until one has ever opened): websocket at CHAT_WEBSOCKET_PATH, http_stream and sse next to it
# (its directory + "/<name>", Centrifugo's /connection/http_stream and /connection/sse), both with
# bidirectional emulation through CHAT_CENTRIFUGO_EMULATION_PATH
# (https://centrifugal.dev/docs/transports/http_stream, .../sse).
CENTRIFUGO_TRANSPORT_NAMES = ("websocket", "http_stream", "sse")
CHAT_CENTRIFUGO_TRANSPORTS = [
    name.lower() for name in env_list("CHAT_CENTRIFUGO_TRANSPORTS", list(CENTRIFUGO_TRANSPORT_NAMES))
]
if (
    not CHAT_CENTRIFUGO_TRANSPORTS
    or any(name not in CENTRIFUGO_TRANSPORT_NAMES for name in CHAT_CENTRIFUGO_TRANSPORTS)
    or len(set(CHAT_CENTRIFUGO_TRANSPORTS)) != len(CHAT_CENTRIFUGO_TRANSPORTS)
):
    raise ImproperlyConfigured(
        "CHAT_CENTRIFUGO_TRANSPORTS must list, comma-separated and in fallback order, one or more of "
        f"{', '.join(CENTRIFUGO_TRANSPORT_NAMES)} (each once), got "
        f"{os.environ.get('CHAT_CENTRIFUGO_TRANSPORTS')!r}"
    )
# The port browsers open Centrifugo's WebSocket on when it is not the page's own (the stack's l4 mode: nginx passes
# TCP through on a port of its own and Centrifugo terminates TLS): wss://<the page's host name>:<port><path>. Unset or
# empty: the page's origin (l7). The other transports stay on the page's origin either way.
CHAT_CENTRIFUGO_WEBSOCKET_PORT = env_int("CHAT_CENTRIFUGO_WEBSOCKET_PORT", 0)
if not 0 <= CHAT_CENTRIFUGO_WEBSOCKET_PORT < 65536:
    raise ImproperlyConfigured(f"CHAT_CENTRIFUGO_WEBSOCKET_PORT must be a TCP port, got {CHAT_CENTRIFUGO_WEBSOCKET_PORT}")
CHAT_CENTRIFUGO_EMULATION_PATH = os.environ.get("CHAT_CENTRIFUGO_EMULATION_PATH", "/emulation").strip()
if not CHAT_CENTRIFUGO_EMULATION_PATH.startswith("/"):
    raise ImproperlyConfigured("CHAT_CENTRIFUGO_EMULATION_PATH must start with '/'")
# Centrifugo namespace of the users' personal channels "<ns>:#<user pk>" (server-side
# subscription client.subscribe_to_user_personal_channel with personal_channel_namespace = this;
# https://centrifugal.dev/docs/server/server_subs#automatic-personal-channel-subscription).
# Centrifugo's namespace name rule: ^[-a-zA-Z0-9_.]{2,}$.
CHAT_PERSONAL_NAMESPACE = os.environ.get("CHAT_PERSONAL_NAMESPACE", "personal").strip()
if not re.fullmatch(r"[-a-zA-Z0-9_.]{2,}", CHAT_PERSONAL_NAMESPACE):
    raise ImproperlyConfigured(
        "CHAT_PERSONAL_NAMESPACE must be a Centrifugo namespace name (2+ of letters, digits, '-', '_', '.'), "
        f"got {CHAT_PERSONAL_NAMESPACE!r}"
    )
# Personal channels per Centrifugo broadcast call when a room's activity goes to its members.
CHAT_ACTIVITY_BATCH_SIZE = env_int("CHAT_ACTIVITY_BATCH_SIZE", 1000)
CHAT_MESSAGE_MAX_LENGTH = env_int("CHAT_MESSAGE_MAX_LENGTH", 1000)
CHAT_HISTORY_SIZE = env_int("CHAT_HISTORY_SIZE", 50)
# Most messages one gap-fill page (GET /rooms/<name>/messages/?after=<id>) returns; also its
# default ``limit``.
CHAT_GAP_FILL_PAGE_SIZE = env_int("CHAT_GAP_FILL_PAGE_SIZE", 100)

# Realtime transport(s) used by chat.realtime.publish(): Centrifugo (HTTP API), Django
# Channels (channel layer groups), or both.
REALTIME_BACKENDS = ("centrifugo", "channels", "both")
CHAT_REALTIME_BACKEND = os.environ.get("CHAT_REALTIME_BACKEND", "centrifugo").strip().lower()
if CHAT_REALTIME_BACKEND not in REALTIME_BACKENDS:
    raise ImproperlyConfigured(
        f"CHAT_REALTIME_BACKEND must be one of {', '.join(REALTIME_BACKENDS)}, "
        f"got {os.environ.get('CHAT_REALTIME_BACKEND')!r}"
    )

# Redis of the Django Channels layer and the presence sets (chatsite.redis_settings: one server, shards or Redis
# Sentinel; nothing set: the in-memory layer of one process), and the channel layer on it.
CHANNELS_REDIS_URL = os.environ.get("CHANNELS_REDIS_URL", "").strip()
CHANNELS_REDIS_MAX_CONNECTIONS = env_int("CHANNELS_REDIS_MAX_CONNECTIONS", 20)
CHAT_REDIS_SENTINEL = redis_sentinel()
CHAT_CHANNEL_LAYER = os.environ.get("CHAT_CHANNEL_LAYER", "redis").strip().lower()
CHANNEL_LAYERS = channel_layers(CHAT_CHANNEL_LAYER, CHANNELS_REDIS_URL, CHAT_REDIS_SENTINEL, CHANNELS_REDIS_MAX_CONNECTIONS)

# HS256 key for connection/subscription JWTs (Centrifugo client.token.hmac_secret_key) and for
# ?token= on the Channels WebSocket. Empty: token endpoints answer 503, token auth is refused.
CHAT_JWT_SECRET = os.environ.get("CHAT_JWT_SECRET", "")
# Keys still accepted (never used to sign) during a key rotation: the one being replaced, or the one
# coming (playbooks/rotate_secrets.yml), comma-separated.
CHAT_JWT_PREVIOUS_SECRETS = env_list("CHAT_JWT_PREVIOUS_SECRETS")
CHAT_JWT_TTL = env_int("CHAT_JWT_TTL", 300)

# How browsers authenticate to Centrifugo: "proxy" (the connect proxy reads the forwarded
# session cookie; no token) or "jwt" (centrifugo-client.js fetches a connection token from
# /chat/token/ and, for rooms whose access level is not "users", a subscription token from
# /chat/token/subscription/). "jwt" needs
# CHAT_JWT_SECRET (without it the token endpoints answer 503 and no browser could connect).
CENTRIFUGO_CLIENT_AUTH_MODES = ("proxy", "jwt")
CHAT_CENTRIFUGO_CLIENT_AUTH = (
    os.environ.get("CHAT_CENTRIFUGO_CLIENT_AUTH", "proxy").strip().lower()
)
if CHAT_CENTRIFUGO_CLIENT_AUTH not in CENTRIFUGO_CLIENT_AUTH_MODES:
    raise ImproperlyConfigured(
        f"CHAT_CENTRIFUGO_CLIENT_AUTH must be one of {', '.join(CENTRIFUGO_CLIENT_AUTH_MODES)}, "
        f"got {os.environ.get('CHAT_CENTRIFUGO_CLIENT_AUTH')!r}"
    )
if CHAT_CENTRIFUGO_CLIENT_AUTH == "jwt" and not CHAT_JWT_SECRET:
    raise ImproperlyConfigured("CHAT_CENTRIFUGO_CLIENT_AUTH=jwt requires CHAT_JWT_SECRET")
# Seconds a user stays listed in a room's presence after their last connect/message/heartbeat.
CHAT_PRESENCE_TTL = env_int("CHAT_PRESENCE_TTL", 60)
