"""Streamer P2P ingest plugin: Icecast 2 sources."""

from .server import IcecastServer, IcecastSource, IcecastStats, source_info_from_headers

__all__ = ["IcecastServer", "IcecastSource", "IcecastStats", "source_info_from_headers"]
