"""The shared codec conformance suite on Ogg Opus (plain and chained)."""

from __future__ import annotations

from streamerp2p.codec_conformance import CodecConformance
from streamerp2p_opus import plugin


class TestOpusConformance(CodecConformance):
    codec = plugin.streamerp2p_codecs()[0]
    fixtures = ("opus", "opus-chained", "opus-paged")
    late_join_mpv = True
