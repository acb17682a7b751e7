"""The one hookspec module of Streamer P2P.

Plugins are discovered by stevedore from three entry point groups and registered with pluggy:

* ``streamerp2p.codecs`` — implement :func:`streamerp2p_codecs`
* ``streamerp2p.ingest`` — implement :func:`streamerp2p_ingest_servers`
* ``streamerp2p.ui`` — implement :func:`streamerp2p_ui`

Any plugin may also implement the event hooks (``streamerp2p_station_seen`` ...), which the
runtime calls when the kernel reports something. Event hooks must return quickly and must not
raise; an exception is logged and the plugin keeps being called.

Every hook here is documented in ``docs/hooks.md`` (a test checks it).
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from .types import CodecSpec, IngestSpec, PeerInfo, StationMeta, UISpec

PROJECT = "streamerp2p"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---- plugin types ----------------------------------------------------------------------------


@hookspec
def streamerp2p_codecs() -> Iterable[CodecSpec]:
    """Return the codecs this plugin provides.

    A codec sniffs a stream (``CodecSpec.sniff``), splits it into frames on any read size
    (``CodecSpec.framer``), gives the headers a late joiner needs (``Framer.headers``), says
    whether the internal player can decode it (``decoder_format``) or only external players
    (``passthrough``). The kernel packs frames into chunks; it never looks inside them.
    """


@hookspec
def streamerp2p_ingest_servers() -> Iterable[IngestSpec]:
    """Return the ingest servers this plugin provides.

    An ingest server accepts broadcast tools (Icecast, SHOUTcast...) on a TCP port and hands each
    authenticated source to the node as a :class:`~streamerp2p.types.SourceConnection`
    (station info plus an async byte stream).
    """


@hookspec
def streamerp2p_ui() -> Iterable[UISpec]:
    """Return the front ends this plugin provides (selected with ``streamer --ui NAME``)."""


# ---- events ----------------------------------------------------------------------------------


@hookspec
def streamerp2p_station_seen(station_id: str, meta: StationMeta) -> None:
    """A station's signed record was seen for the first time or changed."""


@hookspec
def streamerp2p_tuned(station_id: str, meta: StationMeta, parent: PeerInfo | None) -> None:
    """This node is now receiving ``station_id`` (first attach or re-attach to a new parent).

    ``parent`` is None for the station's own broadcasting node.
    """


@hookspec
def streamerp2p_now_playing(station_id: str, title: str) -> None:
    """The now-playing title of a station this node receives or broadcasts changed."""


@hookspec
def streamerp2p_peer_joined(station_id: str, peer: PeerInfo) -> None:
    """A child attached to this node for ``station_id``."""


@hookspec
def streamerp2p_peer_left(station_id: str, peer: PeerInfo, reason: str) -> None:
    """A child of this node for ``station_id`` left (``reason``: "detach", "timeout", "leave")."""
