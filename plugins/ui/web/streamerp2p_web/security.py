"""Who may read the page and who may change things.

The web front end has no login: it trusts the browser on this machine. Two attacks remain
from web pages the user visits elsewhere, and both are refused with 403:

* **DNS rebinding** — a foreign page whose host name resolves to 127.0.0.1 is same-origin with
  the UI in the browser's eyes and could read the page (and its token) and the event stream.
  Every request except the public widget routes must name this server in ``Host``: an IP
  literal (rebinding needs a host name) or ``localhost``, with this server's port.
* **Cross-site request forgery** — every state-changing request is a ``POST`` with a JSON body
  (``Content-Type: application/json``), the per-process random token of the served page in the
  ``X-Streamer-Token`` header (a custom header: a foreign page cannot send it without a CORS
  preflight, which is never granted), and, when the browser sends them, an ``Origin`` equal
  to the UI's own origin and ``Sec-Fetch-Site: same-origin``.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

TOKEN_HEADER = "x-streamer-token"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` / ``[v6][:port]`` -> (host, port); None if malformed."""
    try:
        parts = urlsplit("//" + value)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.username or parts.password or parts.path:
        return None
    return host.lower(), port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Guard:
    """The checks of the module docstring for one server (its port and extra host names)."""

    def __init__(self, port: int, token: str, names: Iterable[str] = ()) -> None:
        self.port = port
        self.token = token
        self.names = {"localhost", *(n.lower() for n in names if n and not _is_ip(n))}

    def host_ok(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        split = _split_host(host_header.strip())
        if split is None:
            return False
        host, port = split
        if port is None:
            port = 80
        return port == self.port and (_is_ip(host) or host in self.names)

    def origin_ok(self, origin: str | None, host_header: str | None) -> bool:
        """``Origin`` absent (not a browser, or a same-origin GET), or the UI's own origin."""
        if origin is None:
            return True
        if origin == "null" or not host_header:
            return False
        return origin.lower() == f"http://{host_header.strip().lower()}"

    def token_ok(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent.encode(), self.token.encode())

    def refuse_change(
        self,
        method: str,
        headers: dict[str, str],
    ) -> str | None:
        """Why a state-changing request is refused, or None if it may proceed."""
        host = headers.get("host")
        if method != "POST":
            return "POST only"
        if not self.host_ok(host):
            return "unknown Host (DNS rebinding?)"
        if not self.origin_ok(headers.get("origin"), host):
            return "cross-origin request"
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return "cross-site request"
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return "JSON bodies only"
        if not self.token_ok(headers.get(TOKEN_HEADER)):
            return "missing or wrong token"
        return None
