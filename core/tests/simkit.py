"""Helpers for deterministic overlay tests on the simulator."""

from __future__ import annotations

import random
import struct

from streamerp2p.overlay.events import AudioData
from streamerp2p.overlay.node import Node, NodeConfig
from streamerp2p.overlay.records import StationKey
from streamerp2p.sim import Link, Simulator
from streamerp2p.types import Frame, StationMeta

FRAME = 418  # a 128 kbit/s, 44.1 kHz mp3 frame
FRAME_DT = 1152 / 44100


def frame(n: int) -> Frame:
    body = struct.pack("!I", n) * (FRAME // 4)
    return Frame(body + b"\x00" * (FRAME - len(body)), True)


def addr(i: int) -> tuple[str, int]:
    return (f"10.0.{i // 250}.{i % 250 + 1}", 8466)


class Radio:
    """A simulated station: one broadcaster and listeners, with a frame feeder."""

    def __init__(
        self,
        seed: int = 1,
        *,
        slots: int = 2,
        source_slots: int | None = None,
        link: Link | None = None,
        **cfg: float,
    ) -> None:
        self.sim = Simulator(seed)
        self.rng = random.Random(seed)
        # slots as given: these tests are about the tree, on links of unlimited capacity
        self.cfg = {"bandwidth_test": False, **cfg}
        self.slots = slots
        self.link = link or Link(delay=0.01)
        self.key = StationKey.from_seed(bytes(range(32)))
        self.sid = self.key.station_id
        self.src = addr(0)
        src_node = Node(
            NodeConfig(slots=source_slots or slots, **self.cfg),  # type: ignore[arg-type]
            rng=random.Random(seed),
        )
        self.sim.add(src_node, self.src, self.link)
        self.sim.call(
            self.src,
            lambda n, t: n.start_broadcast(self.key, StationMeta(name="Test FM", bitrate=128), t),
        )
        self.frames_sent = 0
        self.listeners: list[tuple[str, int]] = []

    def node(self, a: tuple[str, int]) -> Node:
        return self.sim.peers[a].node

    def add_listener(
        self,
        i: int,
        hosts: list[tuple[str, int]] | None = None,
        *,
        link: Link | None = None,
        slots: int | None = None,
    ) -> tuple[str, int]:
        a = addr(i)
        n = Node(
            NodeConfig(slots=self.slots if slots is None else slots, **self.cfg),
            rng=random.Random(self.rng.random()),
        )
        self.sim.add(n, a, link or self.link)
        self.sim.call(a, lambda nd, t: nd.tune(self.sid, hosts or [self.src], t))
        self.listeners.append(a)
        return a

    def run(self, seconds: float, step: float = 0.05) -> None:
        """Advance time while the broadcaster gets frames in real time."""
        end = self.sim.now + seconds
        while self.sim.now < end - 1e-9:
            t = self.sim.now + step
            due = int(t / FRAME_DT) - self.frames_sent
            if due > 0:
                frames = [frame(self.frames_sent + k) for k in range(due)]
                self.frames_sent += due
                if self.sim.peers[self.src].alive:
                    self.sim.call(
                        self.src, lambda n, tt, f=frames: n.broadcast_frames(self.sid, f, tt)
                    )
            self.sim.run_until(t)

    def audio(self, a: tuple[str, int]) -> bytes:
        return b"".join(e.payload for e in self.sim.peers[a].events if isinstance(e, AudioData))

    def frame_numbers(self, a: tuple[str, int]) -> list[int]:
        data = self.audio(a)
        assert len(data) % FRAME == 0
        return [struct.unpack_from("!I", data, i)[0] for i in range(0, len(data), FRAME)]

    def depth(self, a: tuple[str, int]) -> int:
        return self.node(a).sessions[self.sid[:4]].depth

    def parent(self, a: tuple[str, int]) -> tuple[str, int] | None:
        return self.node(a).sessions[self.sid[:4]].parent
