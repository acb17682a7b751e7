"""Streamer P2P ingest plugin: SHOUTcast v1 sources."""

from .server import (
    IcySource,
    ShoutcastServer,
    ShoutcastStats,
    parse_password_line,
    source_info_from_icy_headers,
)

__all__ = [
    "IcySource",
    "ShoutcastServer",
    "ShoutcastStats",
    "parse_password_line",
    "source_info_from_icy_headers",
]
