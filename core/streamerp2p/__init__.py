"""Streamer P2P: peer-to-peer internet radio."""

__version__ = "0.1.0"
