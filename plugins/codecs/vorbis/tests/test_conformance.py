"""The shared codec conformance suite on Ogg Vorbis (plain and chained)."""

from __future__ import annotations

from streamerp2p.codec_conformance import CodecConformance
from streamerp2p_vorbis import plugin


class TestVorbisConformance(CodecConformance):
    codec = plugin.streamerp2p_codecs()[0]
    fixtures = ("vorbis", "vorbis-chained", "vorbis-libvorbis")
    late_join_mpv = True
