"""Reachability and NAT traversal for a :class:`~streamerp2p.overlay.node.Node` (sans-I/O).

What a node finds out about itself:

* its public address: every gossip answer (HELLO) echoes the address it came from, as the
  answering node saw it. Two peers seeing two different ports mean a **symmetric** NAT (a new
  public port per destination).
* whether unsolicited datagrams reach it: it asks a host (REACH_REQ) to have a *third* node it
  never wrote to send it a probe (REACH_FWD, REACH_PROBE). A probe that arrives means it is
  **open** (public, or its router forwards the port to it).

A node that is not open (and whose NAT keeps one public port per local port, "cone") asks an open
node to be its **proxy** (PROXY_REQ, answered PROXY_OK), repeats the request every 15 to 25 s as a
keepalive (it keeps its NAT's mapping toward the proxy open) and advertises the proxy in the host
information it gossips. Whoever wants to reach it and has no open path yet sends the datagram to
the proxy wrapped in VIA; the proxy passes it on (FWD, with the sender's address as the proxy saw
it) and the sender also sends a PUNCH straight to the NATed node. The NATed node answers straight
to the sender, after a PUNCH of its own: each side has now sent to the other, so both NATs let the
other's datagrams in (hole punching). A proxy serves a limited number of clients
(``max_proxy_clients``) and forwards only to them.

A node behind a symmetric NAT cannot be punched through by nodes behind NATs (its public port
toward them is not the one anyone knows): it relays nobody, registers no proxy and only talks to
open nodes, which answer it on the port it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import wire
from .hosts import HostRec
from .wire import Addr

if TYPE_CHECKING:
    from .node import Node

REACH_WAIT = 1.5  # seconds for a reachability probe to arrive
REACH_RECHECK = 300.0  # check again now and then (routers and port forwards change)
PROXY_WAIT = 3.0  # seconds for PROXY_OK
PROXY_SILENT = 60.0  # a proxy (or client) not heard from this long is gone
DIRECT_FRESH = 20.0  # a path heard from within this long is open (NAT mappings last longer)
SENT_MEMORY = 200.0  # a probe from a host we wrote to within this long proves nothing
_OPEN_OR_SYMMETRIC = wire.REACH_OPEN | wire.REACH_SYMMETRIC


class Nat:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.reach = 0  # wire.REACH_* flags we know of ourselves
        self.checked = False  # reachability known (open or not)
        self.proxy: Addr | None = None  # ours, when we are behind a NAT
        self.clients: dict[Addr, float] = {}  # nodes we proxy for -> last heard
        self.direct: dict[Addr, float] = {}  # last datagram straight from an address
        self.sent_to: dict[Addr, float] = {}  # last control datagram we sent to an address
        self.observed_by: dict[Addr, Addr] = {}  # peer -> our address as it saw us
        self.lan: Addr | None = None  # our LAN address, when a NAT is between us and the rest
        self.lan_peers: dict[Addr, float] = {}  # LAN addresses of nodes behind our NAT
        self._nonce = 0
        self._reach_deadline: float | None = None
        self._reach_tries = 0
        self._next_check = 0.0
        self._proxy_asked: Addr | None = None
        self._next_proxy_try = 0.0
        self._proxy_heard = 0.0
        self._next_keepalive = 0.0
        self._refused: dict[Addr, float] = {}  # proxies that said no (until)
        self._probed: dict[Addr, float] = {}  # targets we sent a probe to lately
        self._punched: dict[Addr, float] = {}
        self._next_prune = 0.0
        self._inconclusive = False
        # (driver) our own address toward a peer ip: local ip and bound port, None if unknown.
        # Seeing that very address echoed means no NAT is in between: we are open
        self.local_addr: Callable[[str], Addr | None] | None = None

    # ---------------------------------------------------------------- what we know

    @property
    def open(self) -> bool:
        return bool(self.reach & wire.REACH_OPEN)

    @property
    def advertised_proxy(self) -> Addr | None:
        """The proxy others should use: only once we know we are not open (taken before that,
        it is ready when needed, but an open node must not send its callers round a proxy)."""
        return self.proxy if self.checked and not self.open else None

    @property
    def symmetric(self) -> bool:
        return bool(self.reach & wire.REACH_SYMMETRIC)

    def status(self) -> dict[str, object]:
        obs = self.node.observed
        return {
            "public": f"{obs[0]}:{obs[1]}" if obs else None,
            "reachable": self.open if self.checked else None,
            "symmetric_nat": self.symmetric,
            "proxy": f"{prx[0]}:{prx[1]}" if (prx := self.advertised_proxy) else None,
            "proxy_clients": len(self.clients),
        }

    def observed(self, peer: Addr, ours: Addr) -> None:
        """A HELLO from ``peer`` says it saw us as ``ours``."""
        seen = self.observed_by
        seen[peer] = ours
        local = self.local_addr(peer[0]) if self.local_addr is not None else None
        if local is not None and local[0] != ours[0]:
            self.lan = local  # nodes behind the same NAT reach us there
        if local == ours:
            self.lan = None
            if not self.open:
                self._set_open(ours)  # no NAT between us and the internet
            return
        if len(seen) > 8:
            del seen[next(iter(seen))]
        ports = {a for a in seen.values()}
        if len(ports) > 1 and len({a[0] for a in ports}) == 1 and not self.open:
            # one public address, several ports: each destination gets its own mapping
            self.reach |= wire.REACH_SYMMETRIC
            self.proxy = None

    def can_reach(self, addr: Addr) -> bool:
        """False for a host we cannot get a datagram to: behind a NAT while we are behind a
        symmetric one (punching fails both ways), unless a path is open already."""
        obs = self.node.observed
        if obs is not None and addr[0] == obs[0] and self.lan is not None:
            return False  # our own router's public address: use the LAN address (no hairpin)
        if not self.symmetric:
            return True
        rec = self.node.hosts.get(addr)
        if rec is None or rec.proxy is None:
            return True
        return self.node._now - self.direct.get(addr, -1e9) < DIRECT_FRESH

    # ---------------------------------------------------------------- sending

    def route(self, data: bytes, addr: Addr) -> bool:
        """Send ``data`` through ``addr``'s proxy if no path to it is open yet (True: done)."""
        node = self.node
        now = node._now
        self.sent_to[addr] = now
        rec = node.hosts.get(addr)
        if rec is None or rec.proxy is None or rec.proxy == addr:
            return False
        if now - self.direct.get(addr, -1e9) < DIRECT_FRESH:
            return False
        if self.symmetric:
            node.stats.nat_unreachable += 1
            return True  # it could not answer us: do not bother its proxy
        if len(data) + 23 <= wire.MAX_DATAGRAM:
            node._out.append((wire.Via(addr, data).encode(), rec.proxy))
            self.sent_to[rec.proxy] = now
            node.stats.nat_via += 1
        if now - self._punched.get(addr, -1e9) > 0.5:
            self._punched[addr] = now
            node._out.append((wire.Punch(node.node_id).encode(), addr))  # open our side
            self.sent_to[addr] = now
        return True

    def consider_lan(self, addr: Addr, rec: HostRec, now: float) -> None:
        """``rec`` (at public ``addr``) is behind our own NAT: know it by its LAN address too,
        and prefer it (a station's traffic then enters the LAN once)."""
        node = self.node
        obs = node.observed
        lan = rec.lan
        if lan is not None and lan == addr:
            self.lan_peers[addr] = now  # it writes to us from its LAN address: a neighbour
            return
        if lan is None or obs is None or addr[0] != obs[0] or lan == self.lan:
            return
        self.lan_peers[lan] = now
        if len(self.lan_peers) > 64:
            del self.lan_peers[min(self.lan_peers, key=self.lan_peers.__getitem__)]
        known = node.hosts.get(lan)
        if known is None:
            entry = HostRec(rec.node_id, rec.tag, rec.last_heard, rec.slots)
            entry.reach = wire.REACH_OPEN  # on our LAN, no NAT in between
            node.hosts.add(lan, entry)
        elif rec.tag != known.tag and rec.last_heard > known.last_heard:
            node.hosts.set_tag(lan, rec.tag)

    def heard(self, addr: Addr, now: float) -> None:
        self.direct[addr] = now
        if addr == self.proxy:
            self._proxy_heard = now
        elif addr in self.clients:
            self.clients[addr] = now

    # ---------------------------------------------------------------- periodic work

    def tick(self, now: float) -> None:
        node = self.node
        if now >= self._next_prune:
            self._next_prune = now + 30.0
            for d, age in (
                (self.direct, DIRECT_FRESH * 3),
                (self.sent_to, SENT_MEMORY),
                (self._probed, 10.0),
                (self._punched, 10.0),
                (self._refused, 0.0),
            ):
                for a in [a for a, t in d.items() if now - t > age]:
                    del d[a]
            for a in [a for a, t in self.clients.items() if now - t > PROXY_SILENT * 1.5]:
                del self.clients[a]
        # reachability: asked once we know our public address, again every few minutes
        if self._reach_deadline is not None and now >= self._reach_deadline:
            self._reach_deadline = None
            if self._inconclusive and self.checked:
                # a probe came, but from a host we had written to: keep what we knew (small
                # networks: everybody has written to everybody)
                self._inconclusive = False
                self._next_check = now + REACH_RECHECK
            else:
                # no probe, or none that proves anything: not open until one does (a port
                # forwarded in a tiny network costs a needless proxy; public hosts know by
                # their own address)
                self._inconclusive = False
                self._reach_tries += 1
                if self._reach_tries >= 2:
                    self.checked = True  # two helpers' probes never came: not open
                    self.reach &= ~wire.REACH_OPEN
                    self._next_check = now + REACH_RECHECK
        if self._reach_deadline is None and node.observed is not None and now >= self._next_check:
            if self._ask_probe(now):
                self._next_check = now + (REACH_RECHECK if self.checked else 0.5)
            else:
                self._next_check = now + 2.0
        # a proxy when we are not open (and can be punched through); taken at once, before the
        # check has concluded (a needless proxy costs a keepalive every 20 s)
        open_or_symmetric = self.reach & _OPEN_OR_SYMMETRIC
        if not open_or_symmetric and node.observed is not None:
            self._keep_proxy(now)
        elif self.proxy is not None and open_or_symmetric:
            self.proxy = None

    def wake_at(self) -> float:
        t = self._next_check
        if self._reach_deadline is not None:
            t = min(t, self._reach_deadline)
        if not self.reach & _OPEN_OR_SYMMETRIC and self.node.observed is not None:
            t = min(t, self._next_keepalive if self.proxy is not None else self._next_proxy_try)
        return t

    def _ask_probe(self, now: float) -> bool:
        node = self.node
        cand = [a for a in (node.hosts.random() for _ in range(6)) if a is not None]
        cand = [a for a in cand if now - self.direct.get(a, -1e9) < 60.0] or cand
        if not cand and node.seeds:
            cand = list(node.seeds)
        if not cand:
            return False
        self._nonce = node.rng.getrandbits(32)
        self._reach_deadline = now + REACH_WAIT
        node._send(wire.ReachReq(self._nonce).encode(), node.rng.choice(cand))
        return True

    def _keep_proxy(self, now: float) -> None:
        node = self.node
        if self.proxy is not None and now - self._proxy_heard > PROXY_SILENT:
            self.proxy = None  # gone: find another
        if self.proxy is not None:
            if now >= self._next_keepalive:
                self._next_keepalive = now + 15.0 + 10.0 * node.rng.random()
                node._send(wire.ProxyReq(node.node_id).encode(), self.proxy)
            return
        if now < self._next_proxy_try:
            return
        if self._proxy_asked is not None:
            self._refused[self._proxy_asked] = now + 60.0  # it did not answer
        pick = self._pick_proxy(now)
        self._proxy_asked = pick
        self._next_proxy_try = now + (PROXY_WAIT if pick is not None else 5.0)
        if pick is not None:
            node._send(wire.ProxyReq(node.node_id).encode(), pick)

    def _pick_proxy(self, now: float) -> Addr | None:
        """An open host heard from lately; one behind our own router (same public address,
        a forwarded port) first: it is close, and our LAN's traffic stays on the LAN."""
        node = self.node
        ours = node.observed[0] if node.observed else None
        best: tuple[int, float, Addr] | None = None
        for addr, rec in node.hosts.items():
            if not rec.reach & wire.REACH_OPEN or now < self._refused.get(addr, 0.0):
                continue
            if now - rec.last_heard > PROXY_SILENT:
                continue
            key = (0 if addr[0] == ours else 1, -rec.last_heard, addr)
            if best is None or key < best:
                best = key
        return best[2] if best else None

    # ---------------------------------------------------------------- messages

    def on_reach_req(self, msg: wire.ReachReq, addr: Addr, now: float) -> None:
        node = self.node
        # a third node, one the asker is unlikely to have written to
        for _ in range(6):
            q = node.hosts.random()
            if q is not None and q != addr and q[0] != addr[0]:
                node._send(wire.ReachFwd(msg.nonce, addr).encode(), q)
                return

    def on_reach_fwd(self, msg: wire.ReachFwd, addr: Addr, now: float) -> None:
        if now - self._probed.get(msg.target, -1e9) < 10.0:
            return  # one small probe per target and 10 s: no one can aim us at a victim
        self._probed[msg.target] = now
        self.node._send(wire.ReachProbe(msg.nonce).encode(), msg.target)

    def on_reach_probe(self, msg: wire.ReachProbe, addr: Addr, now: float) -> None:
        if self._reach_deadline is None or msg.nonce != self._nonce:
            return
        node = self.node
        talks = any(addr == s.parent or addr in s.children for s in node.sessions.values())
        if talks or now - self.sent_to.get(addr, -1e9) < SENT_MEMORY:
            self._inconclusive = True  # our NAT may have let it in because we wrote to it
            return
        self._reach_deadline = None
        self._set_open(None)

    def _set_open(self, ours: Addr | None) -> None:
        self._reach_tries = 0
        self._inconclusive = False
        self.checked = True
        self.reach = (self.reach | wire.REACH_OPEN) & ~wire.REACH_SYMMETRIC
        self.proxy = None
        self._next_check = self.node._now + REACH_RECHECK

    def on_proxy_req(self, msg: wire.ProxyReq, addr: Addr, now: float) -> None:
        node = self.node
        ok = self.open and (
            addr in self.clients or len(self.clients) < node.config.max_proxy_clients
        )
        if ok:
            self.clients[addr] = now
        node._send(wire.ProxyOk(1 if ok else 0).encode(), addr)

    def on_proxy_ok(self, msg: wire.ProxyOk, addr: Addr, now: float) -> None:
        if addr == self.proxy:
            self._proxy_heard = now
            if not msg.ok:
                self.proxy = None
            return
        if addr != self._proxy_asked:
            return
        self._proxy_asked = None
        if msg.ok:
            self.proxy = addr
            self._proxy_heard = now
            self._next_keepalive = now + 15.0 + 10.0 * self.node.rng.random()
        else:
            self._refused[addr] = now + 60.0

    def on_via(self, msg: wire.Via, addr: Addr, now: float) -> None:
        node = self.node
        if (
            msg.target not in self.clients
            or len(msg.inner) < 4
            or msg.inner[3]
            in (
                wire.VIA,
                wire.FWD,
            )
        ):
            node.stats.nat_refused += 1  # not our client: we are nobody's open relay
            return
        out = wire.Fwd(addr, msg.inner).encode()
        if len(out) <= wire.MAX_DATAGRAM:
            node._out.append((out, msg.target))
            node.stats.nat_forwarded += 1

    def on_fwd(self, msg: wire.Fwd, addr: Addr, now: float) -> None:
        node = self.node
        if addr != self.proxy or len(msg.inner) < 4 or msg.inner[3] in (wire.VIA, wire.FWD):
            node.stats.nat_refused += 1
            return
        origin = msg.origin
        if now - self._punched.get(origin, -1e9) > 0.5:
            self._punched[origin] = now
            node._out.append((wire.Punch(node.node_id).encode(), origin))  # open our side
            self.sent_to[origin] = now
        # (answers go straight to the origin: our punch has just opened the way)
        node.receive_datagram(msg.inner, origin, now)

    def on_punch(self, msg: wire.Punch, addr: Addr, now: float) -> None:
        self.direct[addr] = now
