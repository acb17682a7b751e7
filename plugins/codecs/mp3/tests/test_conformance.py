"""The shared codec conformance suite on mp3."""

from __future__ import annotations

from streamerp2p.codec_conformance import CodecConformance
from streamerp2p_mp3 import plugin


class TestMp3Conformance(CodecConformance):
    codec = plugin.streamerp2p_codecs()[0]
    fixtures = ("mp3",)
    # mp3pro fixtures are mp3 (there is no mp3PRO encoder): not foreign to mp3
    foreign = ("vorbis", "opus", "aac")
    late_join_errors_allowed = 0  # (the bit reservoir could cause one; FFmpeg is quiet here)
