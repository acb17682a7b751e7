"""The host list: up to ``capacity`` known nodes, with O(1) add, remove and random choice.

Each entry records the node id, the station tag it is tuned to (4 zero bytes: none), its relay
capacity and when it was last heard from directly. An index by tag answers "who is tuned to this
station" without scanning. When full, a new host evicts the least recently heard of a few random
entries, so memory stays bounded and live hosts (heard often) survive. Silent hosts are removed
lazily: when picked at random (expired), or when a request to them went unanswered.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .wire import Addr

NO_TAG = b"\x00\x00\x00\x00"


@dataclass(slots=True)
class HostRec:
    node_id: bytes
    tag: bytes
    last_heard: float
    slots: int = 0
    asked: float | None = None  # when we sent it a request it has not answered yet
    source: bool = False  # it broadcasts the station of its tag
    reach: int = 0  # wire.REACH_* flags it announced
    proxy: Addr | None = None  # its proxy, when it is behind a NAT
    lan: Addr | None = None  # its LAN address, when it is behind a NAT


class HostList:
    def __init__(self, capacity: int, rng: random.Random) -> None:
        self.capacity = capacity
        self.rng = rng
        self._map: dict[Addr, HostRec] = {}
        # the entry at an address, or None (the dict's own get: the hottest lookup of a node)
        self.get: Callable[[Addr], HostRec | None] = self._map.get
        self._keys: list[Addr] = []
        self._idx: dict[Addr, int] = {}
        self._by_tag: dict[bytes, dict[Addr, None]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, addr: object) -> bool:
        return addr in self._map

    def __iter__(self) -> Iterator[Addr]:
        return iter(list(self._keys))

    def items(self) -> list[tuple[Addr, HostRec]]:
        return list(self._map.items())

    def add(self, addr: Addr, rec: HostRec) -> HostRec:
        if addr in self._map:
            self.remove(addr)
        while len(self._keys) >= self.capacity > 0:
            self._evict()
        self._map[addr] = rec
        self._idx[addr] = len(self._keys)
        self._keys.append(addr)
        if rec.tag != NO_TAG:
            self._by_tag.setdefault(rec.tag, {})[addr] = None
        return rec

    def set_tag(self, addr: Addr, tag: bytes) -> None:
        rec = self._map[addr]
        if rec.tag == tag:
            return
        self._untag(addr, rec.tag)
        rec.tag = tag
        if tag != NO_TAG:
            self._by_tag.setdefault(tag, {})[addr] = None

    def remove(self, addr: Addr) -> None:
        rec = self._map.pop(addr, None)
        if rec is None:
            return
        self._untag(addr, rec.tag)
        i = self._idx.pop(addr)
        last = self._keys.pop()
        if i < len(self._keys):
            self._keys[i] = last
            self._idx[last] = i

    def random(self) -> Addr | None:
        if not self._keys:
            return None
        return self._keys[self.rng.randrange(len(self._keys))]

    def tuned(self, tag: bytes) -> list[Addr]:
        """Hosts known to be tuned to the station with this tag."""
        return list(self._by_tag.get(tag, ()))

    def tuned_count(self, tag: bytes) -> int:
        return len(self._by_tag.get(tag, ()))

    def tags(self) -> list[bytes]:
        return list(self._by_tag)

    def _untag(self, addr: Addr, tag: bytes) -> None:
        if tag == NO_TAG:
            return
        d = self._by_tag.get(tag)
        if d is not None:
            d.pop(addr, None)
            if not d:
                del self._by_tag[tag]

    def _evict(self) -> None:
        picks = [self._keys[self.rng.randrange(len(self._keys))] for _ in range(4)]
        self.remove(min(picks, key=lambda a: self._map[a].last_heard))
