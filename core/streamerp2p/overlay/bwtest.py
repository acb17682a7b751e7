"""Upload capacity test for a :class:`~streamerp2p.overlay.node.Node` (sans-I/O).

A node whose upload capacity is not configured measures it: it sends a **packet train** (
``TRAIN_LEN`` datagrams of ``TRAIN_SIZE`` bytes, back to back) to a host it already talks to,
which times the arrivals and answers with what came in and over how long (BW_REPORT). The
bottleneck on the way spaces the datagrams at its rate, so bytes after the first ÷ time between
first and last arrival is the capacity (a token bucket that drops part of the train does not
change it: what it lets through still leaves at its rate). The median of three trains to
different hosts is taken, at start and every ``RETEST`` seconds. Relay slots then come from
the measurement with headroom (and never exceed the configured slot count), and children's loss
reports still lower them (see the node's ``_check_loss``).
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

from . import wire
from .wire import Addr

if TYPE_CHECKING:
    from .node import Node

TRAIN_LEN = 24
TRAIN_SIZE = 1200
TRAINS = 3  # estimates per test (their median counts)
WAIT = 3.0  # seconds for a report
QUIET = 0.8  # a helper reports this long after a train's last arrival (its tail may be lost)
RETEST = 600.0
MAX_TRAINS_HELD = 8  # trains a helper times at once
_INF = float("inf")


class BandwidthTest:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.measured_kbps = 0.0  # 0: not measured (yet)
        self.estimates: list[float] = []
        self._train = 0
        self._sent: dict[int, tuple[Addr, float]] = {}  # our trains -> helper, sent at
        self._used: set[Addr] = set()
        self._next = 2.0  # after start: a few hosts heard from by then
        self._held: dict[tuple[Addr, int], list[float]] = {}  # (from, train) -> timing

    @property
    def wanted(self) -> bool:
        return self.node.config.upload_kbps <= 0 and self.node.config.bandwidth_test

    def wake_at(self) -> float:
        held = self._held
        t = min((v[1] + QUIET for v in held.values()), default=_INF) if held else _INF
        if not self.wanted:
            return t
        t = min(t, self._next)
        for _, sent in self._sent.values():
            t = min(t, sent + WAIT)
        return t

    def tick(self, now: float) -> None:
        if self._held:
            for key in [k for k, v in self._held.items() if now - v[1] > QUIET]:
                self._report(key, now)  # (as a helper: the train's tail was lost)
        if not self.wanted:
            return
        for train, (_, sent) in list(self._sent.items()):
            if now - sent > WAIT:
                del self._sent[train]  # no report: lost, or the helper is gone
        if now < self._next or self._sent:
            return
        helper = self._helper(now)
        if helper is None:
            self._next = now + 2.0
            return
        self._send_train(helper, now)
        if len(self.estimates) + len(self._sent) < TRAINS:
            self._next = now + 0.5
        else:
            self._next = now + RETEST

    def _helper(self, now: float) -> Addr | None:
        """A host with an open path both ways, not used yet in this test."""
        node = self.node
        direct = node.nat.direct
        for fresh_only in (True, False):  # (few hosts: a helper may time a second train)
            best = None
            for addr, t in direct.items():
                if (fresh_only and addr in self._used) or now - t > 10.0:
                    continue
                if best is None or t > direct[best]:
                    best = addr
            if best is not None:
                return best
        return None

    def _send_train(self, helper: Addr, now: float) -> None:
        node = self.node
        self._train = (self._train + 1) & 0xFFFFFFFF
        self._sent[self._train] = (helper, now)
        self._used.add(helper)
        pad = bytes(TRAIN_SIZE - 10)
        for i in range(TRAIN_LEN):
            node._out.append((wire.BwTrain(self._train, i, TRAIN_LEN, pad).encode(), helper))
        node.stats.bw_trains += 1

    # ------------------------------------------------------------------ messages

    def on_train(self, msg: wire.BwTrain, addr: Addr, now: float) -> None:
        """Helper side: time a train's arrival, report when its last datagram came."""
        key = (addr, msg.train)
        held = self._held.get(key)
        if held is None:
            if len(self._held) >= MAX_TRAINS_HELD or msg.count > 64:
                return
            # first arrival, last arrival, bytes after the first, datagrams
            held = self._held[key] = [now, now, 0.0, 1.0]
        else:
            held[1] = now
            held[2] += len(msg.pad) + 10 + 28  # the datagram with its IP and UDP headers
            held[3] += 1
        if msg.index == msg.count - 1:
            self._report(key, now)

    def _report(self, key: tuple[Addr, int], now: float) -> None:
        held = self._held.pop(key)
        span_us = int((held[1] - held[0]) * 1e6)
        rep = wire.BwReport(key[1], int(held[3]), int(held[2]), span_us)
        self.node._send(rep.encode(), key[0])

    def on_report(self, msg: wire.BwReport, addr: Addr, now: float) -> None:
        sent = self._sent.get(msg.train)
        if sent is None or sent[0] != addr:
            return
        del self._sent[msg.train]
        if msg.received < 3:
            return  # too few datagrams came through to time them
        # (all at once: faster than the helper can time, 1 µs stands for "very fast")
        self.estimates.append(msg.bytes * 8 / (max(msg.span_us, 1) / 1e6) / 1000)
        if len(self.estimates) >= TRAINS:
            self.measured_kbps = statistics.median(self.estimates[-TRAINS:])
            self.estimates.clear()
            self._used.clear()
            self.node._set_measured_upload(self.measured_kbps)
