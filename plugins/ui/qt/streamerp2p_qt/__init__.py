"""Streamer P2P Qt front end (PySide6)."""
