"""Deterministic simulator: drives unchanged overlay nodes on virtual time.

A seeded event heap delivers datagrams over a link model (per-peer one-way delay, random loss,
upload bandwidth with serialisation) and fires each node's timer. The simulator calls the very
same :class:`~streamerp2p.overlay.node.Node` methods the anyio runtime calls; nothing in the
overlay knows which of the two drives it.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from .overlay.events import Event
from .overlay.node import Node
from .overlay.wire import Addr


@dataclass(slots=True)
class Link:
    delay: float = 0.01  # one-way, seconds, to the "internet core"
    loss: float = 0.0  # probability a datagram sent or received here is lost
    upload_bps: float | None = None  # None = unlimited
    # the uplink's buffer, in seconds of its rate: a datagram that would wait longer is dropped
    # (tail drop, as a router's queue does). None = unbounded
    queue_s: float | None = None


@dataclass(slots=True)
class SimPeer:
    addr: Addr
    node: Node
    link: Link
    alive: bool = True
    busy_until: float = 0.0  # upload serialisation
    queue_drops: int = 0  # datagrams its full uplink buffer dropped (Link.queue_s)
    timer_at: float | None = None
    events: list[Event] = field(default_factory=list)


class Simulator:
    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self.peers: dict[Addr, SimPeer] = {}
        self._heap: list[tuple[float, int, int, Addr, bytes | None, Addr | None]] = []
        self._n = 0
        self.drop: Callable[[Addr, Addr, bytes], bool] | None = None  # tests: drop chosen datagrams
        self.on_event: Callable[[SimPeer, Event], None] | None = None
        self.keep_events = True
        self.delivered = 0
        self.lost = 0

    # -------------------------------------------------------------- setup

    def add(self, node: Node, addr: Addr, link: Link | None = None) -> SimPeer:
        peer = SimPeer(addr, node, link or Link())
        self.peers[addr] = peer
        # no NATs in the simulator: every peer's address is its own, as a public host's is
        node.nat.local_addr = lambda _ip, a=addr: a
        self._schedule_timer(peer)
        return peer

    def kill(self, addr: Addr) -> None:
        """Crash: the node stops receiving, sending and ticking at once."""
        self.peers[addr].alive = False

    def call(self, addr: Addr, fn: Callable[[Node, float], object]) -> object:
        """Run a command on a node now (e.g. ``lambda n, t: n.tune(sid, hosts, t)``)."""
        peer = self.peers[addr]
        result = fn(peer.node, self.now)
        self._flush(peer)
        return result

    # -------------------------------------------------------------- running

    def run_until(self, t: float) -> None:
        heap = self._heap
        peers = self.peers
        pop = heapq.heappop
        flush = self._flush
        while heap and heap[0][0] <= t:
            now, _, kind, dst, data, src = pop(heap)
            self.now = now
            peer = peers.get(dst)
            if peer is None or not peer.alive:
                continue
            if kind == 0:
                if peer.timer_at != now:
                    continue  # superseded
                peer.timer_at = None
                peer.node.handle_timer(now)
            else:
                self.delivered += 1
                peer.node.receive_datagram(data, src, now)  # type: ignore[arg-type]
            flush(peer)
        self.now = t

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def run_while(self, cond: Callable[[], bool], limit: float, step: float = 0.05) -> bool:
        """Run until ``cond()`` is false or ``limit`` seconds pass; True if cond became false."""
        end = self.now + limit
        while self.now < end:
            if not cond():
                return True
            self.run_for(step)
        return not cond()

    # -------------------------------------------------------------- internals

    def _push(
        self, when: float, kind: int, dst: Addr, data: bytes | None, src: Addr | None
    ) -> None:
        self._n += 1
        heapq.heappush(self._heap, (when, self._n, kind, dst, data, src))

    def _schedule_timer(self, peer: SimPeer) -> None:
        t = max(peer.node.get_timer(), self.now)
        if peer.timer_at is None or t < peer.timer_at or peer.timer_at < self.now:
            peer.timer_at = t
            self._push(t, 0, peer.addr, None, None)

    def _send_side(self, peer: SimPeer, out: list[tuple[bytes, Addr]]) -> None:
        """Datagrams from a second port of the peer's: an address nobody knows (no answers)."""
        src = (peer.addr[0], 1)
        for data, dst in out:
            dpeer = self.peers.get(dst)
            if dpeer is not None and dpeer.alive:
                self._push(self.now + peer.link.delay + dpeer.link.delay, 1, dst, data, src)

    def _flush(self, peer: SimPeer) -> None:
        # (the hot path: _push and _schedule_timer inlined, same arithmetic in the same order)
        node = peer.node
        out = node.datagrams_to_send()
        now = self.now
        heap = self._heap
        if out:
            rng = self.rng
            link = peer.link
            peers = self.peers
            drop = self.drop
            upload = link.upload_bps
            qmax = link.queue_s
            delay = link.delay
            src = peer.addr
            push = heapq.heappush
            n = self._n
            for data, dst in out:
                dpeer = peers.get(dst)
                depart = now
                if upload:
                    busy = peer.busy_until
                    if busy > now:
                        if qmax is not None and busy - now > qmax:
                            peer.queue_drops += 1
                            self.lost += 1
                            continue
                        depart = busy + len(data) * 8 / upload
                    else:
                        depart = now + len(data) * 8 / upload
                    peer.busy_until = depart
                if dpeer is None:
                    continue
                if drop is not None and drop(src, dst, data):
                    self.lost += 1
                    continue
                dlink = dpeer.link
                loss = link.loss + dlink.loss
                if loss and rng.random() < loss:
                    self.lost += 1
                    continue
                n += 1
                push(heap, (depart + delay + dlink.delay, n, 1, dst, data, src))
            self._n = n
        side = node.side_datagrams_to_send()
        if side:
            self._send_side(peer, side)
        events = node.events()
        if events:
            if self.on_event is not None:
                on_event = self.on_event
                for ev in events:
                    on_event(peer, ev)
            if self.keep_events:
                peer.events.extend(events)
        t = node.get_timer()
        if t < now:
            t = now
        at = peer.timer_at
        if at is None or t < at or at < now:
            peer.timer_at = t
            self._n += 1
            heapq.heappush(heap, (t, self._n, 0, peer.addr, None, None))
