"""The shared codec conformance suite on (declared) mp3PRO."""

from __future__ import annotations

from streamerp2p.codec_conformance import CodecConformance
from streamerp2p_mp3pro import plugin


class TestMp3ProConformance(CodecConformance):
    codec = plugin.streamerp2p_codecs()[0]
    fixtures = ("mp3pro",)
    foreign = ("mp3", "vorbis", "opus", "aac")  # plain mp3 above all: never claimed
    late_join_errors_allowed = 0
