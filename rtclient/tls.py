"""The TLS context of the WebSocket clients (``wss://`` URLs)."""

from __future__ import annotations

import ssl


def client_ssl_context(url: str, ca_file: str | None = None,
                       check_hostname: bool = True) -> ssl.SSLContext | None:
    """The ``ssl.SSLContext`` a client of ``url`` needs: None for ``ws://``/``http://`` URLs.

    Args:
        url: the WebSocket URL, e.g. ``"wss://127.0.0.1:8443/connection/websocket"``.
        ca_file: CA bundle that signs the server's certificate (the test CA of the self-signed
            test hosts); None for the system's CAs.
        check_hostname: False to verify the chain but not the name, for a client that connects to
            nginx's private address while the certificate names the public host.

    Raises:
        FileNotFoundError / ssl.SSLError: ``ca_file`` is missing or not a CA bundle.
    """
    if not url.startswith(("wss://", "https://")):
        return None
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = check_hostname
    return context
