"""The Ogg Vorbis codec plugin (entry point ``vorbis`` in group ``streamerp2p.codecs``).

Identification header (30 bytes)::

    0 "\\x01vorbis"  7 version (u32, 0)  11 channels (u8)  12 sample rate (u32)
    16 bitrate maximum  20 nominal  24 minimum (i32, bit/s, 0 if unset)  28 block sizes  29 framing
"""

from __future__ import annotations

import struct
from functools import partial

from streamerp2p.hookspecs import hookimpl
from streamerp2p.types import CodecSpec, StreamFormat

from .ogg import OggFramer, OggMapping, OggRejoin, sniff_ogg

CONTENT_TYPES: tuple[str, ...] = ("audio/vorbis", "audio/x-vorbis", "audio/x-vorbis+ogg")
#: Generic Ogg content types: they do not say which codec, so ``sniff`` decides from the BOS page.
OGG_TYPES: tuple[str, ...] = ("audio/ogg", "application/ogg", "audio/x-ogg", "application/x-ogg")

_MODES = {1: "mono", 2: "stereo"}


def identify(packet: bytes) -> bool:
    """True for a Vorbis identification header (version 0, sane channels and rate)."""
    if len(packet) < 30 or not packet.startswith(b"\x01vorbis"):
        return False
    version, channels, rate = struct.unpack_from("<IBI", packet, 7)
    return version == 0 and channels > 0 and rate > 0


def describe(packet: bytes, measured_kbps: int) -> StreamFormat | None:
    """Format from the identification header; the nominal bitrate, else the measured one."""
    if not identify(packet):
        return None
    channels, rate, _maximum, nominal = struct.unpack_from("<BIii", packet, 11)
    kbps = round(nominal / 1000) if nominal > 0 else measured_kbps
    rate_text = f"{rate / 1000:g} kHz"
    mode = _MODES.get(channels, f"{channels} channels")
    bitrate_text = f"{kbps} kbit/s{' nominal' if nominal > 0 else ''}, " if kbps else ""
    return StreamFormat(
        bitrate=kbps,
        sample_rate=rate,
        channels=channels,
        description=f"Ogg Vorbis, {bitrate_text}{rate_text}, {mode}",
    )


def granule_rate(packet: bytes) -> int:
    """Vorbis granule positions count samples (per channel)."""
    return struct.unpack_from("<I", packet, 12)[0] if identify(packet) else 0


VORBIS = OggMapping(
    name="vorbis",
    header_packets=3,  # identification, comment, setup
    identify=identify,
    comment_prefix=b"\x03vorbis",
    describe=describe,
    granule_rate=granule_rate,
)


def sniff(head: bytes, content_type: str | None) -> float:
    """1.0 for a Vorbis BOS page under an Ogg or Vorbis content type, 0.95 for one under no or
    another content type, 0.0 otherwise (also for Ogg streams of other codecs). Never raises."""
    try:
        head = bytes(head or b"")
        mime = (content_type or "").split(";", 1)[0].strip().lower()
        if sniff_ogg(head, identify) < 0:
            return 0.0
        return 1.0 if mime in OGG_TYPES + CONTENT_TYPES else 0.95
    except Exception:
        return 0.0


def framer() -> OggFramer:
    return OggFramer(VORBIS)


@hookimpl
def streamerp2p_codecs() -> list[CodecSpec]:
    """Provide the Ogg Vorbis codec, decoded internally by FFmpeg's ogg demuxer."""
    return [
        CodecSpec(
            name="vorbis",
            content_types=CONTENT_TYPES,
            extensions=("ogg", "oga"),
            sniff=sniff,
            framer=framer,
            passthrough=False,
            decoder_format="ogg",
            description="Ogg Vorbis",
            rejoin=partial(OggRejoin, VORBIS.header_packets),
        )
    ]
