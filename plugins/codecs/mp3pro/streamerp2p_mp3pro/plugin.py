"""The mp3PRO codec plugin (entry point ``mp3pro`` in group ``streamerp2p.codecs``).

mp3PRO (Thomson/Fraunhofer, 2001) is an mp3 stream at half the sample rate whose frames carry
Spectral Band Replication data in their ancillary bits. Nothing in the frame headers marks it
(no flag, no tag of its own): telling it from plain mp3 in-band means decoding each frame's
main data to find where the ancillary data starts and recognising SBR there, which needs an
mp3PRO decoder. So this plugin recognises mp3PRO **only by what the source declares**: the
content types ``audio/mp3pro`` / ``audio/x-mp3pro`` (which the host matches exactly before any
sniffing) and the extension ``.mp3pro``. A source that sends mp3PRO as ``audio/mpeg`` is played
as mp3 (that is the compatible core: half the bandwidth, no SBR). ``sniff`` never claims a
stream without such a content type, so plain mp3 is never taken for mp3PRO.

Frames are cut by the mp3 plugin's framer (the frames are valid mp3 frames). The codec is
``passthrough``: players connected to the node's HTTP output get the stream unchanged (an
mp3PRO-capable player decodes the SBR part); the internal player must not decode it as plain
mp3 and should say :data:`CANNOT_DECODE` instead.
"""

from __future__ import annotations

from streamerp2p.hookspecs import hookimpl
from streamerp2p.types import CodecSpec, StreamFormat
from streamerp2p_mp3.framer import Mp3Framer
from streamerp2p_mp3.framer import sniff as mp3_sniff

CONTENT_TYPES: tuple[str, ...] = ("audio/mp3pro", "audio/x-mp3pro")

#: What the internal player should show for an mp3PRO station.
CANNOT_DECODE = (
    "mp3PRO cannot be decoded by the built-in player (no mp3PRO decoder is available to it); "
    "open the station's stream URL in a player with mp3PRO support"
)


class Mp3ProFramer(Mp3Framer):
    """The mp3 framer; the format says mp3PRO (the SBR part doubles the sample rate)."""

    def format(self) -> StreamFormat | None:
        fmt = super().format()
        if fmt is None:
            return None
        return StreamFormat(
            bitrate=fmt.bitrate,
            sample_rate=fmt.sample_rate * 2,  # what an mp3PRO decoder outputs
            channels=fmt.channels,
            description=f"mp3PRO ({fmt.description} core + SBR; passed through)",
        )


def sniff(head: bytes, content_type: str | None) -> float:
    """1.0 for a declared mp3PRO content type with an empty or mp3-looking head, else 0.0.

    There is no in-band signature (see the module docstring), so without such a content type
    this never claims a stream. Never raises.
    """
    try:
        mime = (content_type or "").split(";", 1)[0].strip().lower()
        if mime not in CONTENT_TYPES:
            return 0.0
        return 1.0 if mp3_sniff(head, "audio/mpeg") == 1.0 else 0.0
    except Exception:
        return 0.0


@hookimpl
def streamerp2p_codecs() -> list[CodecSpec]:
    """Provide mp3PRO: recognised by declared content type, passed through to players."""
    return [
        CodecSpec(
            name="mp3pro",
            content_types=CONTENT_TYPES,
            extensions=("mp3pro",),
            sniff=sniff,
            framer=Mp3ProFramer,
            passthrough=True,
            decoder_format=None,  # the internal player cannot decode it
            description="mp3PRO (mp3 + SBR), passed through: " + CANNOT_DECODE,
        )
    ]
