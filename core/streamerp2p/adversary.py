"""Malicious peers for the simulator and tests: an adversary model, not part of the kernel.

Each is the unchanged :class:`~streamerp2p.overlay.node.Node` with what it sends rewritten
(``datagrams_to_send``) or with extra datagrams of its own (``handle_timer``); the honest
nodes they talk to run the real code. Kinds:

- ``tamper``: relays the stream but alters what it passes on: flips payload bytes, rewrites
  sequence numbers, injects forged chunks at future sequence numbers, flips a hash in seals
  and the title of station records (their signatures no longer hold).
- ``drop``: accepts children and sends them everything but the audio: no DATA at all (no
  live chunks, no repairs), while its status messages (PSTAT) keep saying all is well.
- ``lie``: claims an upload of several streams (so it offers 3 slots on a link that carries
  about one) and depth 0 in its OFFERs and PSTATs, to draw joiners and sit high in the tree.
- ``flood``: an honest relay that also sends requests (HELLO_REQ, JOIN_REQ, NACK,
  STATION_REQ) and garbage to the hosts it knows, as fast as half its uplink allows, and
  answers gossip with made-up hosts that claim the station and free slots.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from .overlay import wire
from .overlay.node import Node, NodeConfig
from .overlay.records import StationRecord
from .overlay.wire import Addr

KINDS = ("tamper", "drop", "lie", "flood")


class Tamperer(Node):
    """Alters chunks, seals and station records it sends (see the module docstring)."""

    kind = "tamper"

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._n = 0

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        out: list[tuple[bytes, Addr]] = []
        for data, addr in super().datagrams_to_send():
            t = data[3]
            if t == wire.DATA and len(data) > wire.DATA_HEADER_LEN + 8:
                self._n += 1
                mode = self._n % 3
                if mode == 0:  # altered bytes
                    h = wire.DATA_HEADER_LEN
                    data = data[:h] + bytes(b ^ 0x5A for b in data[h : h + 8]) + data[h + 8 :]
                elif mode == 1:  # the chunk under another sequence number
                    seq = int.from_bytes(data[8:12], "big")
                    data = data[:8] + ((seq + 1) & 0xFFFFFFFF).to_bytes(4, "big") + data[12:]
                else:  # and a forged chunk ahead of the stream
                    seq = int.from_bytes(data[8:12], "big")
                    fake = data[:8] + ((seq + 40) & 0xFFFFFFFF).to_bytes(4, "big") + data[12:]
                    out.append((fake[:-4] + b"\xde\xad\xbe\xef", addr))
            elif t == wire.SEAL and len(data) > 30:
                data = data[:20] + bytes([data[20] ^ 1]) + data[21:]  # a hash changed
            elif t == wire.STATION:
                data = _forged_title(data)
            out.append((data, addr))
        return out


def _decode(data: bytes) -> wire.Message | None:
    try:
        return wire.decode(data)
    except wire.WireError:
        return None  # (a flooder's garbage)


def _forged_title(data: bytes) -> bytes:
    """A STATION message with a newer version and another title, under the old signature."""
    try:
        rec = StationRecord.decode(data[4:])
    except wire.WireError:
        return data
    forged = replace(rec, title="FORGED " + rec.title, version=rec.version + 1)
    return data[:4] + forged.encode()


class Dropper(Node):
    """Keeps its place in the tree but never sends audio."""

    kind = "drop"

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        return [(d, a) for d, a in super().datagrams_to_send() if d[3] != wire.DATA]


class Liar(Node):
    """Claims more upload than it has (config) and depth 0 (OFFER, PSTAT)."""

    kind = "lie"

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        out: list[tuple[bytes, Addr]] = []
        for data, addr in super().datagrams_to_send():
            if data[3] in (wire.OFFER, wire.PSTAT):
                msg = _decode(data)
                if isinstance(msg, wire.Offer):
                    msg.depth = 0
                    msg.weakest = 0
                    data = msg.encode()
                elif isinstance(msg, wire.PStat):
                    msg.depth = 0
                    data = msg.encode()
            out.append((data, addr))
        return out


class Flooder(Node):
    """An honest relay that floods the hosts it knows with requests and garbage."""

    kind = "flood"

    def __init__(self, *args: Any, flood_bps: float = 16_000.0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._flood_bytes_per_s = flood_bps / 8
        self._flood_at = 0.0
        self._frng = random.Random(self.rng.random())
        self.flood_sent = 0

    def get_timer(self) -> float:
        return min(super().get_timer(), self._flood_at + 0.1)

    def handle_timer(self, now: float) -> None:
        super().handle_timer(now)
        if now < self._flood_at + 0.1:
            return
        dt = min(1.0, now - self._flood_at) if self._flood_at else 0.1
        self._flood_at = now
        budget = self._flood_bytes_per_s * dt
        rng = self._frng
        tags = list(self.sessions)
        sid = self.sessions[tags[0]].station_id if tags else bytes(16)
        while budget > 0:
            dst = self.hosts.random()
            if dst is None:
                return
            k = rng.randrange(5)
            self._req_id += 1
            if k == 0:
                data = wire.HelloReq(self._req_id, self.node_id, sid[:4], 1).encode()
            elif k == 1:
                data = wire.JoinReq(sid, self._req_id, self.node_id, 1, 8).encode()
            elif k == 2:
                first = rng.randrange(1 << 20)
                data = wire.Nack(sid[:4], [(first + 100 * i, 64) for i in range(8)]).encode()
            elif k == 3:
                data = wire.StationReq(sid).encode()
            else:
                data = b"SP\x01" + rng.randbytes(rng.randrange(1, 200))
            self._out.append((data, dst))
            self.flood_sent += 1
            budget -= len(data) + 28

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        out: list[tuple[bytes, Addr]] = []
        for data, addr in super().datagrams_to_send():
            if data[3] == wire.HELLO:
                msg = _decode(data)
                if isinstance(msg, wire.Hello):
                    tag = next(iter(self.sessions), bytes(4))
                    r = self._frng
                    msg.hosts = [
                        wire.HostEntry(
                            r.randbytes(wire.ID_LEN),
                            tag,
                            (f"198.18.{r.randrange(256)}.{r.randrange(256)}", 8466),
                            8,
                        )
                        for _ in range(8)
                    ]
                    data = msg.encode()
            out.append((data, addr))
        return out


def make(
    kind: str, config: NodeConfig, *, rng: random.Random, bitrate_kbps: int, upload_kbps: float
) -> Node:
    """A malicious node of ``kind`` (see KINDS) for a peer whose real upload is given."""
    if kind == "tamper":
        return Tamperer(config, rng=rng)
    if kind == "drop":
        return Dropper(config, rng=rng)
    if kind == "lie":
        claimed = max(upload_kbps, 4.0 * bitrate_kbps)  # 3 slots, whatever its link
        cfg = replace(config, upload_kbps=claimed)
        return Liar(cfg, rng=rng)
    if kind == "flood":
        return Flooder(config, rng=rng, flood_bps=max(8_000.0, upload_kbps * 1000 / 2))
    raise ValueError(f"unknown malicious kind {kind!r} (one of {', '.join(KINDS)}, mix)")
