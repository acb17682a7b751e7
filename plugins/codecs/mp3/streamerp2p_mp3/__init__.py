"""Streamer P2P codec plugin: mp3."""
