"""Login limits with django-axes (https://django-axes.readthedocs.io/en/latest/4_configuration.html): failed
logins are counted per client address and per username; past ``AXES_FAILURE_LIMIT`` failures within the
cool-off, that address or username is refused (429, ``chat/templates/chat/lockout.html``) until the cool-off
has passed. The addresses of ``DJANGO_LOGIN_LIMIT_EXEMPT`` (a load generator, an office NAT) are never
counted per address, only per username, as nginx exempts them from its per-address limits
(``stack_login_limit_exempt``)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest


@lru_cache(maxsize=1)
def _exempt_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in settings.CHAT_LOGIN_LIMIT_EXEMPT)


def is_exempt(address: str | None) -> bool:
    """Whether ``address`` (an IPv4 or IPv6 address as text; None or garbage: no) is in one of the
    networks of ``settings.CHAT_LOGIN_LIMIT_EXEMPT``."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in _exempt_networks())


def lockout_parameters(request: HttpRequest, credentials: dict | None) -> list[str]:
    """``AXES_LOCKOUT_PARAMETERS``: what a failed login counts against. Both the client's address and the
    username, each alone (axes' list semantics: either one locks), except for an exempt address, where only
    the username counts.

    Args:
        request: the login request; axes has set ``request.axes_ip_address`` (the client's address from
            nginx's X-Real-IP, AXES_IPWARE_META_PRECEDENCE_ORDER).
        credentials: the submitted credentials (unused).
    """
    if is_exempt(getattr(request, "axes_ip_address", None)):
        return ["username"]
    return ["ip_address", "username"]
