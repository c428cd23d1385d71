"""Authentication against the deployed site: Django's login form, the session cookie, the
secrets the inventory generated, and the JWTs of Django's token views (chat.token_views).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import requests

#: Django's connection-token view: ``GET`` -> ``{"token": "<connection JWT>"}``.
CONNECTION_TOKEN_PATH = "/chat/token/"
#: Django's subscription-token view: ``GET ?channel=rooms:<name>`` -> ``{"token": ...}``.
SUBSCRIPTION_TOKEN_PATH = "/chat/token/subscription/"


class LoginError(RuntimeError):
    """Django's login form did not accept the credentials."""


class TokenError(RuntimeError):
    """A token view refused (``status_code``: 403 forbidden room, 404 unknown room, 400 bad
    channel, 503 token authentication disabled) or answered without a token."""

    def __init__(self, url: str, status_code: int, body: str) -> None:
        super().__init__(f"{url} answered HTTP {status_code}: {body[:200]}")
        self.url, self.status_code = url, status_code


def login_attempt(site_url: str, username: str, password: str, timeout: float = 10.0,
                  verify: str | bool = True) -> tuple[requests.Session, requests.Response]:
    """One login through Django's login form, the way a browser does (GET for the CSRF cookie, then the
    POST), whatever its outcome: the session and the POST's response (302 when it succeeded, 200 with
    the form's error, 429 when a login limit refused it; roles/django README, "Login limits").

    Args:
        site_url: the site's origin, e.g. ``"https://127.0.0.1:8443"`` (no trailing slash).
        username, password: the credentials to try.
        timeout: per-request timeout in seconds.
        verify: CA bundle path that signs the site's certificate (the self-signed certificate of
            the test hosts), or True for the system's CAs.

    Raises:
        requests.RequestException: the site did not answer, or the form page did not load.
    """
    session = requests.Session()
    # REQUESTS_CA_BUNDLE and friends would override session.verify: trust only what is given.
    session.trust_env = False
    session.verify = verify
    login_url = f"{site_url}/accounts/login/"
    session.get(login_url, timeout=timeout).raise_for_status()
    response = session.post(
        login_url,
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies.get("csrftoken", ""),
        },
        headers={"Referer": login_url, "Origin": site_url},
        allow_redirects=False,
        timeout=timeout,
    )
    return session, response


def django_login(site_url: str, username: str, password: str, timeout: float = 10.0,
                 verify: str | bool = True) -> requests.Session:
    """Log in through Django's login form (:func:`login_attempt`) and require success.

    Args:
        site_url, username, password, timeout, verify: as for :func:`login_attempt`.

    Returns:
        A ``requests.Session`` holding the ``sessionid`` and ``csrftoken`` cookies.

    Raises:
        LoginError: the form did not redirect (wrong credentials) or set no session cookie.
        requests.RequestException: the site did not answer.
    """
    session, response = login_attempt(site_url, username, password, timeout, verify)
    if response.status_code != 302 or "sessionid" not in session.cookies:
        raise LoginError(f"login of {username!r} at {site_url}/accounts/login/ failed: HTTP {response.status_code}")
    return session


def cookie_header(session: requests.Session) -> str:
    """The session's cookies as one ``Cookie`` request header value (RFC 6265 section 5.4)."""
    return "; ".join(f"{name}={value}" for name, value in session.cookies.items())


class SessionCookies:
    """A logged-in user's cookies, kept up to date the way a browser's cookie jar is, for clients that send
    the ``Cookie`` header themselves (rtclient.publish.DjangoPoster, rtclient.history, CentrifugoConnection).

    Django gives a session a new key (``Set-Cookie: sessionid=...``) when it re-signs it with a new
    SECRET_KEY (``get_user`` with SECRET_KEY_FALLBACKS: ``session.cycle_key()``), so a client that kept the old
    header would be logged out by a rotation a browser survives.

    Args:
        cookies: cookie name -> value (``requests.Session.cookies``, or a dict).

    ``header()`` is the current ``Cookie`` header; ``update(set_cookies)`` takes a response's cookies
    (``aiohttp`` ``response.cookies``: name -> Morsel, or name -> str) and rewrites the ``Cookie`` entry of
    every mapping given to ``bind`` (a centrifuge-python client's headers, which it sends on each reconnect).
    """

    def __init__(self, cookies: Any) -> None:
        self.values: dict[str, str] = {name: value for name, value in dict(cookies).items()}
        self._bound: list[dict[str, str]] = []

    def header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.values.items())

    def bind(self, headers: dict[str, str]) -> dict[str, str]:
        """Keep ``headers["Cookie"]`` equal to :meth:`header` from now on; returns ``headers``."""
        headers["Cookie"] = self.header()
        self._bound.append(headers)
        return headers

    def update(self, set_cookies: Any) -> None:
        """Take the cookies a response set (an emptied cookie, as Django's logout sends, is dropped)."""
        changed = False
        for name, morsel in dict(set_cookies or {}).items():
            value = getattr(morsel, "value", morsel)
            if value:
                changed |= self.values.get(name) != value
                self.values[name] = value
            elif name in self.values:
                del self.values[name]
                changed = True
        if changed:
            for headers in self._bound:
                headers["Cookie"] = self.header()

    def __str__(self) -> str:
        return self.header()


def credentials_root(explicit: str | os.PathLike | None = None) -> Path:
    """The directory of the inventory's generated secrets: ``explicit``, else env
    ``RTSTACK_CREDENTIALS_DIR``.

    Raises:
        KeyError: neither is given.
    """
    if explicit:
        return Path(explicit)
    try:
        return Path(os.environ["RTSTACK_CREDENTIALS_DIR"])
    except KeyError:
        raise KeyError("RTSTACK_CREDENTIALS_DIR is not set: the directory of the inventory's "
                       "generated secrets (e.g. inventories/local/credentials)") from None


class Secret(str):
    """A ``str`` whose ``repr()`` hides its value: a secret passed to a test (a fixture, an argument) shows as
    ``'<secret>'`` in pytest's tracebacks and assertion messages, which CI prints, while ``str()``, f-strings,
    comparisons and every API that takes a ``str`` see the value itself."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<secret>'"


def read_credential(name: str, credentials_dir: str | os.PathLike | None = None) -> Secret:
    """A secret the inventory generated (an ``ansible.builtin.password`` lookup file, e.g.
    ``user_alice``), without the ``salt=`` suffix that lookup may append, as a :class:`Secret`.

    Raises:
        FileNotFoundError: no such secret; KeyError: no credentials directory (see
        :func:`credentials_root`).
    """
    base = credentials_root(credentials_dir)
    return Secret((base / name).read_text().split(" salt=")[0].strip())


#: The generated secrets that must never show in Ansible's output, a journal or a world-readable file: the
#: stack's passwords and keys and the demo users' passwords (a scenario that does not use one has no file for it).
SECRET_NAMES = ("redis_requirepass", "redis_exporter_password", "redis_centrifugo_password", "redis_django_password",
                "redis_replication_password", "redis_sentinel_password", "redis_sentinel_auth_password",
                "centrifugo_http_api_key", "centrifugo_token_key", "centrifugo_admin_password",
                "centrifugo_admin_secret", "django_secret_key", "postgresql_app_password",
                "user_alice", "user_bob", "user_admin", "user_carol")


def stack_secrets(credentials_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Name -> value of each of :data:`SECRET_NAMES` the credentials directory holds (see
    :func:`read_credential`); the names without a file are left out.

    Raises:
        KeyError: no credentials directory (see :func:`credentials_root`).
    """
    base = credentials_root(credentials_dir)
    return {name: read_credential(name, base) for name in SECRET_NAMES if (base / name).exists()}


def ca_file(credentials_dir: str | os.PathLike | None = None) -> str:
    """Path of the test CA (``<credentials>/tls/ca.crt``, made by the nginx role) that signs the
    self-signed site certificate of the test hosts."""
    return str(credentials_root(credentials_dir) / "tls" / "ca.crt")


def fetch_token(session: requests.Session, site_url: str, path: str = CONNECTION_TOKEN_PATH,
                timeout: float = 10.0, **params: str) -> str:
    """A JWT from one of Django's token views, for the session's user.

    Args:
        session: a logged-in session (:func:`django_login`).
        site_url: the site's origin, no trailing slash.
        path: :data:`CONNECTION_TOKEN_PATH` or :data:`SUBSCRIPTION_TOKEN_PATH`.
        timeout: seconds.
        params: query parameters (``channel="rooms:<name>"`` for a subscription token).

    Raises:
        TokenError: the view answered other than 200 with a token.
        requests.RequestException: the site did not answer.
    """
    url = f"{site_url}{path}"
    response = session.get(url, params=params or None, timeout=timeout, allow_redirects=False)
    token = None
    if response.status_code == 200:
        try:
            token = response.json().get("token")
        except ValueError:
            token = None
    if not token:
        raise TokenError(url, response.status_code, response.text)
    return token


def connection_token(session: requests.Session, site_url: str, timeout: float = 10.0) -> str:
    """A connection JWT (``/chat/token/``): Centrifugo verifies it before, and instead of, the
    connect proxy (https://centrifugal.dev/docs/server/authentication); the Channels consumer
    takes it as ``?token=``. Raises as :func:`fetch_token`."""
    return fetch_token(session, site_url, CONNECTION_TOKEN_PATH, timeout)


def subscription_token(session: requests.Session, site_url: str, channel: str,
                       timeout: float = 10.0) -> str:
    """A subscription JWT for ``channel`` (``rooms:<name>``; ``/chat/token/subscription/``):
    Centrifugo verifies it instead of calling the subscribe proxy
    (https://centrifugal.dev/docs/server/channel_token_auth). Raises as :func:`fetch_token`
    (TokenError with ``status_code`` 403 when the user may not enter the room)."""
    return fetch_token(session, site_url, SUBSCRIPTION_TOKEN_PATH, timeout, channel=channel)


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, without verifying its signature (RFC 7519; PyJWT)."""
    import jwt

    return jwt.decode(token, options={"verify_signature": False})


def expired_copy(token: str, key: str = "wrong-key-for-an-expired-token-000000") -> str:
    """``token``'s claims with ``exp`` = 1 (1970), signed HS256 with ``key`` (not the site's):
    a token every verifier must refuse."""
    import jwt

    return jwt.encode({**token_claims(token), "exp": 1}, key, algorithm="HS256")
