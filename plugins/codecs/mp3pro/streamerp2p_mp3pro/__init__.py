"""Streamer P2P codec plugin: mp3PRO (recognised by what the source declares; passed through)."""

from .plugin import CANNOT_DECODE, CONTENT_TYPES, Mp3ProFramer, sniff

__all__ = ["CANNOT_DECODE", "CONTENT_TYPES", "Mp3ProFramer", "sniff"]
