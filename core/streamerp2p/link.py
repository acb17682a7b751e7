"""``streamerp2p://`` links: a station id, an optional name and seed hosts.

Format (documented in docs/links.md)::

    streamerp2p://<station-id>?name=<url-encoded name>&seed=<host:port>&seed=<[v6]:port>

``<station-id>`` is the 26-character base32 form of the station's 16-byte id. Unknown query
parameters are ignored so the format can grow.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlsplit

from .overlay.records import decode_station_id, encode_station_id
from .overlay.wire import Addr

SCHEME = "streamerp2p"


def parse_hostport(text: str, default_port: int = 8466) -> Addr:
    """``host:port``, ``host`` or ``[v6]:port`` -> (host, port); raises ValueError."""
    t = text.strip()
    if t.startswith("["):
        host, closed, rest = t[1:].partition("]")
        if not closed:
            raise ValueError(f"no ] in {text!r}")
        host = host.strip()  # (found by bench fuzz: "[ x" printed as " x:8466", parsed as "x")
        port = rest.lstrip(":") or str(default_port)
    elif t.count(":") == 1:
        host, port = t.split(":")
    elif t.count(":") > 1:
        host, port = t, str(default_port)  # bare IPv6
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            # (found by bench fuzz: such a "host" was kept and printed as a link that did not
            # parse back)
            raise ValueError(f"not a host:port or an IPv6 address: {text!r}") from None
    else:
        host, port = t, str(default_port)
    host = host.strip()
    if not host:
        raise ValueError(f"no host in {text!r}")
    if "[" in host or "]" in host:  # (found by bench fuzz: "[[x]" printed as "[x:8466")
        raise ValueError(f"bad host in {text!r}")
    if any(c.isspace() or not c.isprintable() for c in host):  # ("a b:80" is no host)
        raise ValueError(f"bad host in {text!r}")
    p = int(port)
    if not 0 <= p < 65536:
        raise ValueError(f"bad port in {text!r}")
    return (host, p)


def format_hostport(addr: Addr) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Link:
    station_id: bytes
    name: str = ""
    seeds: tuple[Addr, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        q = []
        if self.name:
            q.append("name=" + quote(self.name, safe=""))
        q += ["seed=" + quote(format_hostport(s), safe=":[]") for s in self.seeds]
        return f"{SCHEME}://{encode_station_id(self.station_id)}" + ("?" + "&".join(q) if q else "")

    @classmethod
    def parse(cls, text: str) -> Link:
        """Parse a link, or a bare station id; raises ValueError with a clear message."""
        t = text.strip()
        if "://" not in t:
            return cls(decode_station_id(t))
        parts = urlsplit(t)
        if parts.scheme.lower() != SCHEME:
            raise ValueError(f"not a {SCHEME}:// link: {text!r}")
        sid_text = parts.netloc or parts.path.strip("/")
        q = parse_qs(parts.query)
        seeds = tuple(parse_hostport(s) for s in q.get("seed", []))
        name = q.get("name", [""])[0]
        return cls(decode_station_id(sid_text), name, seeds)
