"""Streamer P2P codec plugin: AAC in ADTS."""

from .framer import AdtsFramer, parse_header, sniff

__all__ = ["AdtsFramer", "parse_header", "sniff"]
