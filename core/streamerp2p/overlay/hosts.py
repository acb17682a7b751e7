"""The host list: up to ``capacity`` known nodes, with O(1) add, remove and random choice.

Each entry records the node id, the station tag it is tuned to (4 zero bytes: none), its relay
capacity and when it was last heard from directly. An index by tag answers "who is tuned to this
station" without scanning. When full, a new host evicts the least recently heard of a few random
entries, so memory stays bounded and live hosts (heard often) survive. Silent hosts are removed
lazily: when picked at random (expired), or when a request to them went unanswered.

Against floods of made-up hosts: an entry only heard of in gossip (second-hand) never evicts
one we heard from ourselves (first-hand) — when no second-hand entry is at hand to make room, the
newcomer is refused — and one network prefix (an IPv4 /24, an IPv6 /48) holds at most
``per_prefix`` second-hand entries and ``4 * per_prefix`` in all.
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
    direct: bool = True  # heard from it ourselves (False: only from gossip)


def prefix(addr: Addr) -> str:
    """The network an address is in, for flood limits: IPv4 /24, IPv6 /48."""
    ip = addr[0]
    if ":" in ip:
        return ":".join(ip.split(":")[:3])
    return ip.rsplit(".", 1)[0]


class HostList:
    def __init__(self, capacity: int, rng: random.Random, per_prefix: int = 64) -> None:
        self.capacity = capacity
        self.rng = rng
        self.per_prefix = per_prefix
        self.refused = 0  # second-hand entries not taken (full of first-hand ones, or prefix)
        self._prefix: dict[str, list[int]] = {}  # prefix -> [second-hand, all]
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

    def add(self, addr: Addr, rec: HostRec) -> HostRec | None:
        """Add (or replace) an entry; returns it, or None if a second-hand one was refused."""
        if addr in self._map:
            self.remove(addr)
        counts = self._prefix.get(prefix(addr))
        full = counts is not None and (
            counts[1] >= 4 * self.per_prefix or (not rec.direct and counts[0] >= self.per_prefix)
        )
        if full and (not rec.direct or not self._evict_in(prefix(addr))):
            self.refused += 1
            return None
        while len(self._keys) >= self.capacity > 0:
            if not self._evict(rec.direct):
                self.refused += 1
                return None
        self._map[addr] = rec
        c = self._prefix.setdefault(prefix(addr), [0, 0])
        c[0] += not rec.direct
        c[1] += 1
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

    def heard(self, addr: Addr, rec: HostRec) -> None:
        """``rec`` (at ``addr``) was heard from directly: it is first-hand from now on."""
        if not rec.direct:
            rec.direct = True
            c = self._prefix.get(prefix(addr))
            if c is not None:
                c[0] -= 1

    def remove(self, addr: Addr) -> None:
        rec = self._map.pop(addr, None)
        if rec is None:
            return
        c = self._prefix[prefix(addr)]
        c[0] -= not rec.direct
        c[1] -= 1
        if not c[1]:
            del self._prefix[prefix(addr)]
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

    def _evict(self, direct: bool) -> bool:
        """Make room: the least recently heard of a few random entries, second-hand ones
        first; a second-hand newcomer may only take a second-hand entry's place."""
        picks = [self._keys[self.rng.randrange(len(self._keys))] for _ in range(8)]
        second = [a for a in picks if not self._map[a].direct]
        if second:
            self.remove(min(second, key=lambda a: self._map[a].last_heard))
            return True
        if not direct:
            return False
        self.remove(min(picks, key=lambda a: self._map[a].last_heard))
        return True

    def _evict_in(self, net: str) -> bool:
        """A first-hand newcomer in a full prefix: the prefix's stalest entry goes."""
        same = [a for a in self._keys if prefix(a) == net]
        if not same:
            return False
        self.remove(min(same, key=lambda a: self._map[a].last_heard))
        return True
