"""The shared codec conformance suite on AAC in ADTS."""

from __future__ import annotations

from streamerp2p.codec_conformance import CodecConformance
from streamerp2p_aac import plugin


class TestAacConformance(CodecConformance):
    codec = plugin.streamerp2p_codecs()[0]
    fixtures = ("aac",)
