"""The mp3 codec plugin (entry point ``mp3`` in group ``streamerp2p.codecs``)."""

from __future__ import annotations

from streamerp2p.hookspecs import hookimpl
from streamerp2p.types import CodecSpec

from .framer import CONTENT_TYPES, Mp3Framer, sniff


@hookimpl
def streamerp2p_codecs() -> list[CodecSpec]:
    """Provide the mp3 codec: MPEG-1/2/2.5 Layer III, decoded internally by FFmpeg's mp3."""
    return [
        CodecSpec(
            name="mp3",
            content_types=CONTENT_TYPES,
            extensions=("mp3",),
            sniff=sniff,
            framer=Mp3Framer,
            passthrough=False,
            decoder_format="mp3",
            description="MPEG audio layer III",
        )
    ]
