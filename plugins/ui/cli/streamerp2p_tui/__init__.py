"""Streamer P2P's terminal front end (``streamer --ui cli``)."""
