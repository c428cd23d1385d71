"""chatsite.settings is executed fresh (runpy) with a controlled environment."""
import runpy
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

SETTINGS = str(Path(__file__).resolve().parent.parent / "chatsite" / "settings.py")
ENV_VARS = [
    "DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_ALLOWED_HOSTS", "DJANGO_CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL", "DJANGO_STATIC_ROOT", "DJANGO_STATIC_URL", "DJANGO_LOG_LEVEL",
    "CENTRIFUGO_HTTP_API_URL", "CENTRIFUGO_HTTP_API_KEY", "CHAT_WEBSOCKET_PATH",
    "CHAT_MESSAGE_MAX_LENGTH", "CHAT_HISTORY_SIZE", "DJANGO_BEHIND_PROXY",
    "DJANGO_USE_X_FORWARDED_HOST", "DJANGO_SECURE_PROXY_SSL_HEADER", "DJANGO_SECURE_COOKIES",
    "CHAT_REALTIME_BACKEND", "CHANNELS_REDIS_URL", "CHANNELS_REDIS_MAX_CONNECTIONS",
    "CHAT_JWT_SECRET", "CHAT_JWT_TTL", "CHAT_PRESENCE_TTL", "CHAT_CENTRIFUGO_CLIENT_AUTH",
    "CHAT_REDIS_SENTINELS", "CHAT_REDIS_SENTINEL_MASTER", "CHAT_REDIS_SENTINEL_PASSWORD",
    "CHAT_REDIS_USERNAME", "CHAT_REDIS_PASSWORD", "CHAT_CENTRIFUGO_TRANSPORTS",
    "CHAT_CENTRIFUGO_EMULATION_PATH", "CHAT_PERSONAL_NAMESPACE", "CHAT_ACTIVITY_BATCH_SIZE",
    "DJANGO_SECRET_KEY_FALLBACKS", "DJANGO_CSP_CONNECT_SRC", "DJANGO_LOGIN_FAILURE_LIMIT", "DJANGO_LOGIN_COOLOFF_SECONDS", "DJANGO_LOGIN_LIMIT_EXEMPT",
]


@pytest.fixture
def load(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)

    def _load(**env: str) -> dict:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return runpy.run_path(SETTINGS)

    return _load


def test_secret_required_when_not_debug(load):
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY"):
        load(DATABASE_URL="sqlite:////tmp/x.sqlite3")


def test_secret_required_when_debug_zero(load):
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY"):
        load(DJANGO_DEBUG="0", DATABASE_URL="sqlite:////tmp/x.sqlite3")


def test_database_url_required_when_not_debug(load):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        load(DJANGO_SECRET_KEY="k")


def test_debug_defaults(load):
    s = load(DJANGO_DEBUG="1")
    assert s["DEBUG"] is True and s["SECRET_KEY"]
    assert s["DATABASES"]["default"]["ENGINE"] == "django_prometheus.db.backends.sqlite3"
    assert str(s["DATABASES"]["default"]["NAME"]).endswith("db.sqlite3")
    assert s["STATIC_URL"] == "/static/"
    assert s["CHAT_WEBSOCKET_PATH"] == "/connection/websocket"
    assert s["CHAT_MESSAGE_MAX_LENGTH"] == 1000 and s["CHAT_HISTORY_SIZE"] == 50
    assert "SECURE_PROXY_SSL_HEADER" not in s


def test_production_env(load):
    s = load(
        DJANGO_SECRET_KEY="k", DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="chat.example.org, 10.0.0.7",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://chat.example.org",
        DATABASE_URL="postgres://chat:pw@10.0.0.4:5432/chat",
        DJANGO_STATIC_ROOT="/srv/chat/static", DJANGO_STATIC_URL="/assets/",
        DJANGO_LOG_LEVEL="warning",
        CENTRIFUGO_HTTP_API_URL="http://10.0.0.5:9000/api", CENTRIFUGO_HTTP_API_KEY="apikey",
        CHAT_WEBSOCKET_PATH="/ws", CHAT_MESSAGE_MAX_LENGTH="200", CHAT_HISTORY_SIZE="20",
        DJANGO_BEHIND_PROXY="1",
    )
    assert s["DEBUG"] is False
    assert s["ALLOWED_HOSTS"] == ["chat.example.org", "10.0.0.7"]
    assert s["CSRF_TRUSTED_ORIGINS"] == ["https://chat.example.org"]
    db = s["DATABASES"]["default"]
    assert (db["ENGINE"], db["HOST"], db["PORT"], db["NAME"]) == (
        "django_prometheus.db.backends.postgresql", "10.0.0.4", 5432, "chat")
    assert s["STATIC_ROOT"] == "/srv/chat/static" and s["STATIC_URL"] == "/assets/"
    assert s["LOGGING"]["root"]["level"] == "WARNING"
    assert s["LOGGING"]["handlers"]["stdout"]["stream"] == "ext://sys.stdout"
    assert s["CENTRIFUGO_HTTP_API_URL"] == "http://10.0.0.5:9000/api"
    assert s["CENTRIFUGO_HTTP_API_KEY"] == "apikey"
    assert (s["CHAT_WEBSOCKET_PATH"], s["CHAT_MESSAGE_MAX_LENGTH"], s["CHAT_HISTORY_SIZE"]) == ("/ws", 200, 20)
    assert s["USE_X_FORWARDED_HOST"] is True
    assert s["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


def test_proxy_headers_only_behind_proxy(load):
    s = load(DJANGO_DEBUG="1", DJANGO_USE_X_FORWARDED_HOST="1")
    assert "USE_X_FORWARDED_HOST" not in s
    s = load(DJANGO_DEBUG="1", DJANGO_BEHIND_PROXY="1", DJANGO_USE_X_FORWARDED_HOST="0")
    assert s["USE_X_FORWARDED_HOST"] is False


@pytest.mark.parametrize("env", [
    {"DJANGO_DEBUG": "maybe"},
    {"DJANGO_DEBUG": "1", "CHAT_HISTORY_SIZE": "lots"},
    {"DJANGO_DEBUG": "1", "CHAT_MESSAGE_MAX_LENGTH": "0"},
    {"DJANGO_DEBUG": "1", "CHAT_WEBSOCKET_PATH": "ws"},
])
def test_invalid_values(load, env):
    with pytest.raises(ImproperlyConfigured):
        load(**env)


def test_realtime_defaults(load):
    s = load(DJANGO_DEBUG="1")
    assert s["CHAT_REALTIME_BACKEND"] == "centrifugo"
    assert s["CHANNEL_LAYERS"] == {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert s["CHAT_JWT_SECRET"] == "" and s["CHAT_JWT_TTL"] == 300
    assert s["ASGI_APPLICATION"] == "chatsite.asgi.application"
    assert s["INSTALLED_APPS"][0] == "daphne" and "channels" in s["INSTALLED_APPS"]


@pytest.mark.parametrize("backend", ["centrifugo", "channels", "both", " Both "])
def test_realtime_backend_values(load, backend):
    assert load(DJANGO_DEBUG="1", CHAT_REALTIME_BACKEND=backend)["CHAT_REALTIME_BACKEND"] == backend.strip().lower()


@pytest.mark.parametrize("backend", ["redis", "", "centrifugo,channels"])
def test_unknown_realtime_backend_refused(load, backend):
    with pytest.raises(ImproperlyConfigured, match="CHAT_REALTIME_BACKEND"):
        load(DJANGO_DEBUG="1", CHAT_REALTIME_BACKEND=backend)


def test_channels_redis_layer(load):
    s = load(DJANGO_DEBUG="1", CHANNELS_REDIS_URL="redis://chat:pw@10.0.0.3:6379/0",
             CHANNELS_REDIS_MAX_CONNECTIONS="8", CHAT_JWT_SECRET="s", CHAT_JWT_TTL="60")
    assert s["CHANNEL_LAYERS"]["default"] == {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": "redis://chat:pw@10.0.0.3:6379/0", "max_connections": 8}]},
    }
    assert s["CHAT_JWT_SECRET"] == "s" and s["CHAT_JWT_TTL"] == 60


def test_channels_redis_pool_honoured():
    """The hosts dict reaches redis' ConnectionPool (channels_redis.utils.create_pool)."""
    from channels_redis.utils import create_pool

    pool = create_pool({"address": "redis://chat:pw@10.0.0.3:6379/0", "max_connections": 8})
    assert pool.max_connections == 8
    assert pool.connection_kwargs["password"] == "pw" and pool.connection_kwargs["db"] == 0


def test_jwt_ttl_must_be_positive(load):
    with pytest.raises(ImproperlyConfigured, match="CHAT_JWT_TTL"):
        load(DJANGO_DEBUG="1", CHAT_JWT_TTL="0")


def test_centrifugo_client_auth_default_proxy(load):
    assert load(DJANGO_DEBUG="1")["CHAT_CENTRIFUGO_CLIENT_AUTH"] == "proxy"


@pytest.mark.parametrize("value, expected", [("proxy", "proxy"), ("jwt", "jwt"), (" JWT ", "jwt")])
def test_centrifugo_client_auth_values(load, value, expected):
    s = load(DJANGO_DEBUG="1", CHAT_CENTRIFUGO_CLIENT_AUTH=value, CHAT_JWT_SECRET="s")
    assert s["CHAT_CENTRIFUGO_CLIENT_AUTH"] == expected


@pytest.mark.parametrize("value", ["token", "", "proxy,jwt", "cookie"])
def test_unknown_centrifugo_client_auth_refused(load, value):
    with pytest.raises(ImproperlyConfigured, match="CHAT_CENTRIFUGO_CLIENT_AUTH must be one of proxy, jwt"):
        load(DJANGO_DEBUG="1", CHAT_CENTRIFUGO_CLIENT_AUTH=value)


def test_jwt_client_auth_requires_secret(load):
    with pytest.raises(ImproperlyConfigured, match="CHAT_JWT_SECRET"):
        load(DJANGO_DEBUG="1", CHAT_CENTRIFUGO_CLIENT_AUTH="jwt")


SENTINEL_ENV = {
    "DJANGO_DEBUG": "1", "CHAT_REDIS_SENTINELS": "10.0.0.3:26379, 10.0.0.4:26379,[fd00::5]:26380",
    "CHAT_REDIS_SENTINEL_MASTER": "rtstack", "CHAT_REDIS_SENTINEL_PASSWORD": "sentinel-secret",
    "CHAT_REDIS_USERNAME": "django", "CHAT_REDIS_PASSWORD": "app-secret", "CHANNELS_REDIS_MAX_CONNECTIONS": "8",
}


def test_channels_redis_sentinel_layer(load):
    s = load(**SENTINEL_ENV)
    sentinel = {
        "sentinels": [("10.0.0.3", 26379), ("10.0.0.4", 26379), ("fd00::5", 26380)],
        "master_name": "rtstack",
        "sentinel_kwargs": {"socket_connect_timeout": 2, "socket_timeout": 2, "password": "sentinel-secret"},
        "username": "django", "password": "app-secret",
    }
    assert s["CHAT_REDIS_SENTINEL"] == sentinel
    assert s["CHANNEL_LAYERS"]["default"] == {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{**sentinel, "max_connections": 8}]},
    }


def test_sentinel_password_optional(load):
    env = {**SENTINEL_ENV, "CHAT_REDIS_SENTINEL_PASSWORD": ""}
    assert "password" not in load(**env)["CHAT_REDIS_SENTINEL"]["sentinel_kwargs"]


def test_channels_redis_sentinel_pool():
    """The sentinel host dict reaches redis' SentinelConnectionPool (channels_redis.utils.create_pool)."""
    from channels_redis.utils import create_pool
    from redis.asyncio.sentinel import SentinelConnectionPool

    pool = create_pool({
        "sentinels": [("10.0.0.3", 26379)], "master_name": "rtstack",
        "sentinel_kwargs": {"password": "sentinel-secret"}, "username": "django", "password": "app-secret",
        "max_connections": 8,
    })
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "rtstack" and pool.max_connections == 8
    assert pool.connection_kwargs["username"] == "django" and pool.connection_kwargs["password"] == "app-secret"
    sentinel_client = pool.sentinel_manager.sentinels[0]
    assert sentinel_client.connection_pool.connection_kwargs["password"] == "sentinel-secret"


def test_channels_redis_shards(load):
    s = load(DJANGO_DEBUG="1", CHANNELS_REDIS_URL="redis://c:pw@10.0.0.3:6379/0, redis://c:pw@10.0.0.4:6379/0")
    assert s["CHANNEL_LAYERS"]["default"]["CONFIG"]["hosts"] == [
        {"address": "redis://c:pw@10.0.0.3:6379/0", "max_connections": 20},
        {"address": "redis://c:pw@10.0.0.4:6379/0", "max_connections": 20},
    ]
    assert s["CHAT_REDIS_SENTINEL"] is None


@pytest.mark.parametrize(("env", "named"), [
    ({"CHAT_REDIS_SENTINELS": "10.0.0.3"}, "CHAT_REDIS_SENTINELS"),
    ({"CHAT_REDIS_SENTINELS": "10.0.0.3:0"}, "CHAT_REDIS_SENTINELS"),
    ({"CHAT_REDIS_SENTINELS": ":26379"}, "CHAT_REDIS_SENTINELS"),
    ({"CHAT_REDIS_SENTINELS": "10.0.0.3:26379"}, "CHAT_REDIS_SENTINEL_MASTER"),
    ({"CHAT_REDIS_SENTINELS": "10.0.0.3:26379", "CHAT_REDIS_SENTINEL_MASTER": "rtstack",
      "CHANNELS_REDIS_URL": "redis://10.0.0.3:6379/0"}, "CHANNELS_REDIS_URL"),
    ({"CHAT_REDIS_USERNAME": "django"}, "CHAT_REDIS_USERNAME"),
    ({"CHAT_REDIS_SENTINEL_MASTER": "rtstack"}, "CHAT_REDIS_SENTINEL_MASTER"),
    ({"CHANNELS_REDIS_URL": "10.0.0.3:6379"}, "CHANNELS_REDIS_URL"),
    ({"CHANNELS_REDIS_URL": "redis://10.0.0.3:6379/0,http://10.0.0.4"}, "CHANNELS_REDIS_URL"),
])
def test_invalid_redis_settings_name_the_variable(load, env, named):
    with pytest.raises(ImproperlyConfigured, match=named):
        load(DJANGO_DEBUG="1", **env)


def test_reach_defaults(load):
    s = load(DJANGO_DEBUG="1")
    assert s["CHAT_CENTRIFUGO_TRANSPORTS"] == ["websocket", "http_stream", "sse"]
    assert s["CHAT_CENTRIFUGO_EMULATION_PATH"] == "/emulation"
    assert s["CHAT_PERSONAL_NAMESPACE"] == "personal"
    assert s["CHAT_ACTIVITY_BATCH_SIZE"] == 1000


def test_reach_values(load):
    s = load(DJANGO_DEBUG="1", CHAT_CENTRIFUGO_TRANSPORTS=" SSE, websocket ",
             CHAT_CENTRIFUGO_EMULATION_PATH="/rt/emulation", CHAT_PERSONAL_NAMESPACE="user.inbox",
             CHAT_ACTIVITY_BATCH_SIZE="50")
    assert s["CHAT_CENTRIFUGO_TRANSPORTS"] == ["sse", "websocket"]
    assert s["CHAT_CENTRIFUGO_EMULATION_PATH"] == "/rt/emulation"
    assert s["CHAT_PERSONAL_NAMESPACE"] == "user.inbox"
    assert s["CHAT_ACTIVITY_BATCH_SIZE"] == 50


@pytest.mark.parametrize("value", ["", "webtransport", "websocket,sockjs", "websocket,websocket", ",", "ws"])
def test_unknown_centrifugo_transports_refused(load, value):
    with pytest.raises(ImproperlyConfigured,
                       match="CHAT_CENTRIFUGO_TRANSPORTS must list, comma-separated and in fallback order, "
                             "one or more of websocket, http_stream, sse"):
        load(DJANGO_DEBUG="1", CHAT_CENTRIFUGO_TRANSPORTS=value)


@pytest.mark.parametrize("env, named", [
    ({"CHAT_CENTRIFUGO_EMULATION_PATH": "emulation"}, "CHAT_CENTRIFUGO_EMULATION_PATH"),
    ({"CHAT_PERSONAL_NAMESPACE": "p"}, "CHAT_PERSONAL_NAMESPACE"),
    ({"CHAT_PERSONAL_NAMESPACE": "per:sonal"}, "CHAT_PERSONAL_NAMESPACE"),
    ({"CHAT_PERSONAL_NAMESPACE": ""}, "CHAT_PERSONAL_NAMESPACE"),
    ({"CHAT_ACTIVITY_BATCH_SIZE": "0"}, "CHAT_ACTIVITY_BATCH_SIZE"),
    ({"CHAT_ACTIVITY_BATCH_SIZE": "many"}, "CHAT_ACTIVITY_BATCH_SIZE"),
])
def test_invalid_reach_settings_name_the_variable(load, env, named):
    with pytest.raises(ImproperlyConfigured, match=named):
        load(DJANGO_DEBUG="1", **env)


def test_deploy_checks_report_nothing_behind_nginx(tmp_path):
    """`manage.py check --deploy` with the settings the django role writes: no warning. HSTS and the HTTPS
    redirect are nginx's (security.W004, security.W008 silenced, with the reason in settings.py)."""
    import os
    import secrets
    import subprocess
    import sys

    env = dict(os.environ, DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
               DJANGO_BEHIND_PROXY="1", DJANGO_SECURE_COOKIES="1", DJANGO_ALLOWED_HOSTS="chat.example.org",
               DJANGO_SETTINGS_MODULE="chatsite.settings")
    env.pop("DJANGO_DEBUG", None)
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=Path(SETTINGS).parents[1], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (2 silenced)." in result.stdout


def test_csp_connect_src_and_login_limits_come_from_the_environment(load):
    settings = load(DJANGO_DEBUG="1", DJANGO_CSP_CONNECT_SRC="https://chat.example.org,wss://chat.example.org",
                    DJANGO_LOGIN_FAILURE_LIMIT="5", DJANGO_LOGIN_COOLOFF_SECONDS="60",
                    DJANGO_LOGIN_LIMIT_EXEMPT="192.0.2.7,10.0.0.0/8")
    directives = settings["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]
    assert directives["connect-src"] == ["'self'", "https://chat.example.org", "wss://chat.example.org"]
    assert directives["script-src"] == ["'self'"]
    assert settings["AXES_FAILURE_LIMIT"] == 5 and settings["AXES_COOLOFF_TIME"].total_seconds() == 60
    assert settings["CHAT_LOGIN_LIMIT_EXEMPT"] == ["192.0.2.7", "10.0.0.0/8"]
    with pytest.raises(ImproperlyConfigured, match="DJANGO_LOGIN_LIMIT_EXEMPT: 'office'"):
        load(DJANGO_DEBUG="1", DJANGO_LOGIN_LIMIT_EXEMPT="office")


@pytest.mark.parametrize("layer, backend", [
    (None, "channels_redis.core.RedisChannelLayer"),
    ("redis_pubsub", "channels_redis.pubsub.RedisPubSubChannelLayer"),
])
def test_channel_layer_class_follows_chat_channel_layer(load, layer, backend):
    env = {"CHAT_CHANNEL_LAYER": layer} if layer else {}
    s = load(DJANGO_DEBUG="1", CHANNELS_REDIS_URL="redis://chat:pw@10.0.0.3:6379/0", **env)
    assert s["CHANNEL_LAYERS"]["default"]["BACKEND"] == backend
    assert s["CHANNEL_LAYERS"]["default"]["CONFIG"]["hosts"][0]["address"] == "redis://chat:pw@10.0.0.3:6379/0"


def test_unknown_channel_layer_refused(load):
    with pytest.raises(ImproperlyConfigured, match="CHAT_CHANNEL_LAYER must be one of redis, redis_pubsub, got 'rabbit'"):
        load(DJANGO_DEBUG="1", CHAT_CHANNEL_LAYER="rabbit")
