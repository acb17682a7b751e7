"""Streamer P2P codec plugin: Ogg Opus (RFC 7845)."""

from .plugin import OPUS, sniff

__all__ = ["OPUS", "sniff"]
