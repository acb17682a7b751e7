"""Streamer P2P ingest plugin: Icecast 2 sources."""
