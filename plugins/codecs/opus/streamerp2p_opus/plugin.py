"""The Ogg Opus codec plugin (entry point ``opus`` in group ``streamerp2p.codecs``).

Written like a third-party plugin: nothing in the kernel knows about Opus. The Ogg pages are
handled by the codec-neutral :mod:`streamerp2p_vorbis.ogg`; this module only says what is
Opus-specific. Identification header (RFC 7845, section 5.1)::

    0 "OpusHead"  8 version (u8, 1)  9 channels (u8)  10 pre-skip (u16)
    12 input sample rate (u32, informative)  16 output gain (i16)  18 mapping family (u8)

Opus always decodes at 48 kHz and its granule positions count 48 kHz samples.
"""

from __future__ import annotations

import struct
from functools import partial

from streamerp2p.hookspecs import hookimpl
from streamerp2p.types import CodecSpec, StreamFormat
from streamerp2p_vorbis.ogg import OggFramer, OggMapping, OggRejoin, sniff_ogg

CONTENT_TYPES: tuple[str, ...] = ("audio/opus", "audio/x-opus+ogg")
#: Generic Ogg content types (also "audio/ogg; codecs=opus"): ``sniff`` decides from the BOS page.
OGG_TYPES: tuple[str, ...] = ("audio/ogg", "application/ogg", "audio/x-ogg", "application/x-ogg")

_MODES = {1: "mono", 2: "stereo"}


def identify(packet: bytes) -> bool:
    """True for an Opus identification header of a version this plugin understands (0.x)."""
    if len(packet) < 19 or not packet.startswith(b"OpusHead"):
        return False
    version, channels = packet[8], packet[9]
    return version >> 4 == 0 and channels > 0


def describe(packet: bytes, measured_kbps: int) -> StreamFormat | None:
    """Channels and input rate from the header; the bitrate is measured (Opus has no nominal)."""
    if not identify(packet):
        return None
    channels = packet[9]
    (input_rate,) = struct.unpack_from("<I", packet, 12)
    mode = _MODES.get(channels, f"{channels} channels")
    parts = ["Ogg Opus"]
    if measured_kbps:
        parts.append(f"~{measured_kbps} kbit/s")
    source = f" (from {input_rate / 1000:g} kHz)" if input_rate not in (0, 48000) else ""
    parts.append("48 kHz" + source)
    parts.append(mode)
    return StreamFormat(
        bitrate=measured_kbps, sample_rate=48000, channels=channels, description=", ".join(parts)
    )


OPUS = OggMapping(
    name="opus",
    header_packets=2,  # OpusHead, OpusTags
    identify=identify,
    comment_prefix=b"OpusTags",
    describe=describe,
    granule_rate=lambda packet: 48000,
)


def sniff(head: bytes, content_type: str | None) -> float:
    """1.0 for an Opus BOS page under an Ogg or Opus content type, 0.95 under no or another
    content type, 0.0 otherwise (also for Ogg streams of other codecs). Never raises."""
    try:
        head = bytes(head or b"")
        mime = (content_type or "").split(";", 1)[0].strip().lower()
        if sniff_ogg(head, identify) < 0:
            return 0.0
        return 1.0 if mime in OGG_TYPES + CONTENT_TYPES else 0.95
    except Exception:
        return 0.0


def framer() -> OggFramer:
    return OggFramer(OPUS)


@hookimpl
def streamerp2p_codecs() -> list[CodecSpec]:
    """Provide the Ogg Opus codec, decoded internally by FFmpeg's ogg demuxer."""
    return [
        CodecSpec(
            name="opus",
            content_types=CONTENT_TYPES,
            extensions=("opus",),
            sniff=sniff,
            framer=framer,
            passthrough=False,
            decoder_format="ogg",
            description="Ogg Opus",
            rejoin=partial(OggRejoin, OPUS.header_packets),
        )
    ]
