"""Events the overlay reports to whoever drives it (runtime, simulator, tests)."""

from __future__ import annotations

from dataclasses import dataclass

from .records import StationRecord
from .wire import Addr


@dataclass(frozen=True, slots=True)
class AudioData:
    """In-order, verified audio of a station this node receives or broadcasts."""

    station_id: bytes
    seq: int
    payload: bytes
    frame_start: bool
    ts: int = 0  # the broadcaster's clock when the chunk was cut (ms, wraps at 2**32)


@dataclass(frozen=True, slots=True)
class StationUpdated:
    """A verified station record, new or newer than the one known."""

    record: StationRecord
    title_changed: bool


@dataclass(frozen=True, slots=True)
class Tuned:
    """Attached to a (new) parent for a station."""

    station_id: bytes
    parent: Addr
    parent_id: bytes
    depth: int
    rehome: bool


@dataclass(frozen=True, slots=True)
class ParentLost:
    station_id: bytes
    parent: Addr
    reason: str  # "timeout", "leave", "loop"


@dataclass(frozen=True, slots=True)
class ChildJoined:
    station_id: bytes
    addr: Addr
    node_id: bytes


@dataclass(frozen=True, slots=True)
class ChildLeft:
    station_id: bytes
    addr: Addr
    node_id: bytes
    reason: str  # "detach", "timeout"


@dataclass(frozen=True, slots=True)
class Skipped:
    """Chunks given up on (never arrived before playback needed them)."""

    station_id: bytes
    first_seq: int
    count: int


@dataclass(frozen=True, slots=True)
class LeaveComplete:
    """A polite leave finished: children re-homed (or the grace period ended)."""


@dataclass(frozen=True, slots=True)
class CodecHeaders:
    """The codec headers a player needs before any audio of the station (verified against the
    signed record; b"" when the codec has none). Sent before the first AudioData that needs
    them, and again when they change (a chained Ogg stream)."""

    station_id: bytes
    headers: bytes


Event = (
    AudioData
    | StationUpdated
    | Tuned
    | ParentLost
    | ChildJoined
    | ChildLeft
    | Skipped
    | LeaveComplete
    | CodecHeaders
)
