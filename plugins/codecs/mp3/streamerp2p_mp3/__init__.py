"""Streamer P2P codec plugin: mp3."""

from .framer import Mp3Framer, sniff

__all__ = ["Mp3Framer", "sniff"]
