"""Streamer P2P front end: a web page served by the node (``streamer --ui web``)."""

from .server import WebUI

__all__ = ["WebUI"]
