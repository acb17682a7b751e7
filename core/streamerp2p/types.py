"""Plain data types shared by the kernel, the runtime and plugins.

This module has no dependencies beyond the standard library so that the sans-I/O overlay,
plugins and front ends can all import it. Plugin *types* (what a hook returns) follow the style of
conda's plugin types: a hook returns declarative objects whose fields are data and callables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

# --------------------------------------------------------------------------------------------
# Station metadata
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StationMeta:
    """What a station says about itself (from the broadcast tool or the command line).

    Carried in the station's signed record through the overlay, shown in directories and sent to
    players as ``icy-*`` headers.
    """

    name: str = ""
    genre: str = ""
    description: str = ""
    url: str = ""
    content_type: str = "audio/mpeg"
    codec: str = ""  # codec plugin name, e.g. "mp3"
    bitrate: int = 0  # kbit/s, 0 when unknown
    sample_rate: int = 0
    channels: int = 0
    public: bool = True


# --------------------------------------------------------------------------------------------
# Codecs (entry point group ``streamerp2p.codecs``)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """One codec unit (an mp3 frame, an Ogg page...) cut from the stream.

    ``sync`` is true when a decoder can start at this frame (late joiners and players start at
    such a frame).
    """

    data: bytes
    sync: bool = True


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """What a framer learned about the stream from its headers."""

    bitrate: int = 0  # kbit/s (nominal or measured average); 0 when unknown
    sample_rate: int = 0
    channels: int = 0
    description: str = ""  # e.g. "MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, stereo"


@dataclass(slots=True)
class FramerStats:
    frames: int = 0
    bytes_in: int = 0
    skipped_bytes: int = 0  # junk, tags or corrupt data dropped between frames
    errors: int = 0  # corrupt or unsupported frames dropped
    #: Why errors were counted, in words a log or ``streamer`` can show as they are, with a
    #: count each, e.g. ``{"free-format mp3 frame (not supported)": 3}``. Optional: a framer
    #: may leave it empty.
    reasons: dict[str, int] = field(default_factory=dict)

    def count_error(self, reason: str, n: int = 1) -> None:
        """Count ``n`` errors of the kind ``reason``."""
        self.errors += n
        self.reasons[reason] = self.reasons.get(reason, 0) + n


class Framer(Protocol):
    """Splits an arbitrary byte stream into frames, on any read size.

    ``push`` never raises on bad input: junk is skipped and counted in ``stats``.
    """

    stats: FramerStats

    def push(self, data: bytes) -> list[Frame]:
        """Feed bytes; return the frames completed by them, in order."""
        ...

    def flush(self) -> list[Frame]:
        """End of stream: return whatever complete frames remain."""
        ...

    def headers(self) -> bytes:
        """Bytes a late joiner needs before any frame (e.g. Ogg Vorbis headers); b"" if none."""
        ...

    def format(self) -> StreamFormat | None:
        """What the stream is, once known (after the first frames); None before."""
        ...

    # Optional (not part of the protocol, so framers without it still conform):
    #
    #     def title(self) -> str | None:
    #         """Now-playing title carried in the stream itself (Vorbis/Opus comments), None
    #         if the stream says nothing."""
    #
    # Call it through :func:`framer_title`.


def framer_title(framer: object) -> str | None:
    """The in-stream title of ``framer`` (its optional ``title()`` method); None if it has no
    such method, says nothing, or raises."""
    method = getattr(framer, "title", None)
    if not callable(method):
        return None
    try:
        title = method()
    except Exception:
        return None
    return title if isinstance(title, str) and title else None


#: A per-reader rewriter of the byte stream a player receives: called with each piece of the
#: stream in order (headers first, then audio, split anywhere), returns the bytes to send
#: (possibly b"" while it waits for the rest of a unit). See ``CodecSpec.rejoin``.
Rewriter = Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class CodecSpec:
    """A codec a plugin provides (returned by the ``streamerp2p_codecs`` hook).

    ``sniff(head, content_type)`` returns a confidence in [0, 1] that the stream starting with
    ``head`` (up to a few KiB) is in this format; it must not raise.
    """

    name: str
    content_types: tuple[str, ...]
    extensions: tuple[str, ...]
    sniff: Callable[[bytes, str | None], float]
    framer: Callable[[], Framer]
    passthrough: bool = False  # internal player cannot decode it; external players get it as is
    decoder_format: str | None = None  # PyAV/FFmpeg demuxer name for internal decoding
    description: str = ""
    #: Factory of a stateful :data:`Rewriter`, one per player reading the local output, for
    #: formats whose stream is not valid when a player starts in the middle (Ogg: page
    #: sequence numbers must not jump after the headers). None: players get the bytes as is.
    rejoin: Callable[[], Rewriter] | None = None


# --------------------------------------------------------------------------------------------
# Ingest (entry point group ``streamerp2p.ingest``)
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SourceInfo:
    """What a broadcast tool told the ingest server when it connected."""

    mount: str = "/"
    content_type: str = ""
    name: str = ""
    genre: str = ""
    description: str = ""
    url: str = ""
    bitrate: int = 0
    public: bool = True
    user_agent: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # other ice-*/icy-* headers


class SourceConnection(Protocol):
    """An authenticated source: station info plus the audio bytes as they arrive."""

    info: SourceInfo
    peer: str  # "host:port" of the broadcast tool

    def __aiter__(self) -> AsyncIterator[bytes]: ...


@dataclass(slots=True)
class IngestContext:
    """Everything an ingest server needs from the node.

    ``on_source`` is awaited once per authenticated source connection and returns when the
    node is done with it; ``on_title(mount, title)`` is called for title updates.
    ``check_password(user, password)`` compares in constant time.
    """

    host: str
    port: int
    check_password: Callable[[str, str], bool]
    on_source: Callable[[SourceConnection], Awaitable[None]]
    on_title: Callable[[str, str], None]
    started: Callable[[str, int], None] = lambda host, port: None  # called once listening
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IngestSpec:
    """An ingest server a plugin provides (returned by ``streamerp2p_ingest_servers``).

    ``serve(ctx)`` runs until cancelled (anyio), accepting broadcast tools on
    ``ctx.host:ctx.port``.
    """

    name: str
    description: str
    default_port: int
    serve: Callable[[IngestContext], Awaitable[None]]


# --------------------------------------------------------------------------------------------
# Front ends (entry point group ``streamerp2p.ui``)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UISpec:
    """A front end a plugin provides (returned by ``streamerp2p_ui``).

    ``run(app)`` is awaited inside the node's anyio task group with the running application
    object (``streamerp2p.app.App``); when it returns, the node stops.
    """

    name: str
    description: str
    run: Callable[[Any], Awaitable[None]]


# --------------------------------------------------------------------------------------------
# Events the runtime broadcasts to plugins (event hooks)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerInfo:
    node_id: str  # hex
    address: str  # "host:port"
