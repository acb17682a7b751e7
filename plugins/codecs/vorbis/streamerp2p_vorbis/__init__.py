"""Streamer P2P codec plugin: Ogg Vorbis (and codec-neutral Ogg helpers in :mod:`.ogg`)."""

from .ogg import OggFramer, OggMapping, OggRejoin
from .plugin import VORBIS, sniff

__all__ = ["VORBIS", "OggFramer", "OggMapping", "OggRejoin", "sniff"]
