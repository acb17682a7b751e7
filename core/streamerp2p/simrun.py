"""``streamer sim``: a whole audience on the deterministic simulator, with figures.

The unchanged overlay nodes run on virtual time. Peers have upload capacity classes (fast,
medium, modem that cannot relay), one-way delays giving RTTs of 20-300 ms, and random loss. They
join as a flash crowd, then churn: every minute a share of them leaves (half politely, half by
crashing) and as many new ones join. Figures are measured after a warm-up.

Continuity is what a listener hears: a player starts when the first audio arrives and then plays
in real time, so chunk ``s`` is due at ``T0 + (ts_s - ts_0)``; a chunk counts if it was delivered
by then. Chunks a peer should have played but never got (it was orphaned, or it skipped) count
as missing.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
import statistics
import sys
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from . import adversary
from .overlay import wire
from .overlay.events import AudioData, Event
from .overlay.node import Node, NodeConfig
from .overlay.records import StationKey
from .sim import Link, SimPeer, Simulator
from .types import Frame, StationMeta

# name: (share of peers, upload in multiples of the stream bitrate). Resource index
# 0.2*3.3 + 0.5*1.1 + 0.3*0.2 = 1.27; a relay slot costs ~1.08x the bitrate (data headers,
# seals, control), so fast peers feed 3 children, medium ones 1, modems none: 1.1 slots a peer.
BIN = 10.0  # seconds: continuity over time (timeline, continuity_by_minute)
CLASSES = {
    "fast": (0.20, 3.3),
    "medium": (0.50, 1.1),
    "modem": (0.30, 0.2),
}


@dataclass
class SimParams:
    peers: int = 200
    minutes: float = 2.0
    churn: float = 0.10  # share of peers leaving (and joining) per minute
    seed: int = 1
    bitrate_kbps: int = 32
    ramp_seconds: float = 30.0  # the initial flash crowd joins over this time
    warmup_seconds: float = 45.0  # figures are measured after this
    loss_max: float = 0.01  # per peer; a path's loss is the sum of its two ends
    delay_min: float = 0.005  # one-way, per peer: RTT = 2 * (d_a + d_b) in 20-300 ms
    delay_max: float = 0.075
    # a peer's uplink buffer in seconds of its rate, and at least 16 KiB (131.072 kbit): tail
    # drop beyond, as a home router's queue; None: unbounded (the default: docs/simulation.md)
    queue_s: float | None = None
    source_upload: float = 1.5  # multiples of the bitrate (one child, some spare for repairs)
    source_slots: int = 1
    reshuffle: bool = True
    # "uniform": every minute `churn` of the peers, picked at random, leave (memoryless: a
    # peer's age says nothing of when it goes); "lognormal": each peer's session length is
    # drawn from a lognormal of sigma `session_sigma` with mean 1/churn minutes (heavy-tailed,
    # as measured sessions are: most are short, a few very long; a peer's age predicts it stays)
    sessions: str = "uniform"
    session_sigma: float = 1.5
    progress: bool = False  # a line on stderr every simulated minute (long runs)
    # adversaries (streamerp2p.adversary): this share of the live peers is malicious, of one
    # kind or of all kinds in turn ("mix"); they are not in honest_continuity
    malicious: float = 0.0
    malicious_kind: str = "mix"
    # this share of the live peers (honest and malicious alike) crashes at once at crash_at s
    crash_at: float | None = None
    crash_share: float = 0.3


@dataclass
class PeerStat:
    cls: str
    joined: float
    kind: str | None = None  # malicious (adversary.KINDS), None: honest
    left: float | None = None
    first_audio: float | None = None
    ts0: int = 0
    on_time: int = 0  # on the player's clock (a rebuffer moves it, see Node reanchor)
    on_time_strict: int = 0  # on the clock of the first audio, never moved
    last_seq: int = -1
    # chunks counted on time that are not due yet: (deadline, on time, strictly on time). A node
    # hands its player the audio it has in order at once, up to a cushion ahead; those due after
    # the listener's end (it left, or the run ended) are taken off the counts then.
    ahead: deque[tuple[float, bool, bool]] = field(default_factory=deque)


@dataclass
class SimResult:
    figures: dict[str, Any]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    tree: list[dict[str, Any]] = field(default_factory=list)


class Swarm:
    def __init__(self, p: SimParams) -> None:
        self.p = p
        self.rng = random.Random(p.seed)
        self.sim = Simulator(p.seed)
        self.sim.keep_events = False
        self.sim.on_event = self._on_event
        self.bytes_by_type: defaultdict[int, int] = defaultdict(int)
        self.sim.drop = self._count
        self.key = StationKey.from_seed(random.Random(p.seed).randbytes(32))
        self.sid = self.key.station_id
        self.tag = self.sid[:4]
        self.stats: dict[tuple[str, int], PeerStat] = {}
        self.source_ts: list[int] = []  # ts of every chunk, by seq
        self.source_payload: list[bytes] = []  # what the broadcaster sent, by seq
        self.bad_bytes = 0  # audio bytes honest listeners got that the broadcaster never sent
        self.malicious_joined = 0
        self.crashed = 0
        self.source_times: list[float] = []
        self.next_ip = 1
        self.frames = 0
        self.frame_len = 144 * p.bitrate_kbps * 1000 // 44100
        self.frame_dt = 1152 / 44100
        self.skipped = 0
        # chunks played on time, by the 10-second bin of their deadline (continuity over time)
        self._on_time_bins: defaultdict[int, int] = defaultdict(int)
        src_cfg = NodeConfig(
            upload_kbps=p.source_upload * p.bitrate_kbps, max_slots=p.source_slots, slots=0
        )
        self.src = self._addr()
        src_link = Link(
            delay=p.delay_min, loss=0.0, upload_bps=p.source_upload * p.bitrate_kbps * 1000
        )
        self.sim.add(Node(src_cfg, rng=random.Random(self.rng.random())), self.src, src_link)
        meta = StationMeta(name="Sim FM", codec="mp3", bitrate=p.bitrate_kbps)
        self.sim.call(self.src, lambda n, t: n.start_broadcast(self.key, meta, t))
        self.timeline: list[dict[str, Any]] = []
        self._window_due = 0
        self._departures: list[tuple[float, tuple[str, int]]] = []  # (when, peer): lognormal
        self.left_count = 0  # departures after the warm-up

    # ------------------------------------------------------------------ set-up helpers

    def _addr(self) -> tuple[str, int]:
        i = self.next_ip
        self.next_ip += 1
        # one peer per /24, as on the internet (host lists limit entries per prefix)
        return (f"10.{(i >> 8) & 255}.{i & 255}.1", 8466)

    def _count(self, src: Any, dst: Any, data: bytes) -> bool:
        self.bytes_by_type[data[3]] += len(data)
        return False

    def _pick_class(self) -> str:
        """The class furthest below its share among live peers (random among ties), so the
        audience keeps its resource index through churn instead of drifting by chance."""
        live = [s.cls for s in self.stats.values() if s.left is None]
        n = len(live) + 1
        deficits = {c: share * n - live.count(c) for c, (share, _) in CLASSES.items()}
        top = max(deficits.values())
        names = [c for c, d in deficits.items() if d >= top - 1e-9]
        return names[0] if len(names) == 1 else self.rng.choice(names)

    def _lifetime(self, initial: bool) -> float:
        """A session length; for the initial audience the rest of a session already under
        way (the stationary residual: a length-biased draw, lognormal with mu + sigma^2, times
        a uniform share), so departures run at `churn` per minute from the start instead of
        the burst a crowd of brand-new short sessions would give."""
        p = self.p
        sigma = p.session_sigma
        mu = math.log(60.0 / p.churn) - sigma * sigma / 2
        if initial:
            return self.rng.lognormvariate(mu + sigma * sigma, sigma) * self.rng.random()
        return self.rng.lognormvariate(mu, sigma)

    def _pick_kind(self) -> str | None:
        """Malicious while the live malicious peers are below their share (deterministic)."""
        p = self.p
        if p.malicious <= 0:
            return None
        live = [s.kind for s in self.stats.values() if s.left is None]
        bad = sum(1 for k in live if k is not None)
        if bad + 1 > p.malicious * (len(live) + 1) + 1e-9:
            return None
        if p.malicious_kind == "mix":
            kind = adversary.KINDS[self.malicious_joined % len(adversary.KINDS)]
        else:
            kind = p.malicious_kind
        self.malicious_joined += 1
        return kind

    def join(self, initial: bool = False) -> None:
        p = self.p
        cls = self._pick_class()
        kind = self._pick_kind()
        up = CLASSES[cls][1] * p.bitrate_kbps
        cfg = NodeConfig(upload_kbps=up, slots=0, reshuffle=p.reshuffle)
        rng = random.Random(self.rng.random())
        if kind is None:
            node = Node(cfg, rng=rng)
        else:
            node = adversary.make(kind, cfg, rng=rng, bitrate_kbps=p.bitrate_kbps, upload_kbps=up)
        addr = self._addr()
        link = Link(
            delay=self.rng.uniform(p.delay_min, p.delay_max),
            loss=self.rng.uniform(0, p.loss_max),
            upload_bps=up * 1000,
            queue_s=None if p.queue_s is None or up <= 0 else max(p.queue_s, 131.072 / up),
        )
        self.sim.add(node, addr, link)
        # a tune-in knows the broadcaster (link) and a few hosts (its own host list / seeds)
        live = [a for a, s in self.stats.items() if s.left is None]
        hosts = [self.src, *self.rng.sample(live, min(3, len(live)))]
        node.add_seeds(hosts[1:])
        self.stats[addr] = PeerStat(cls, self.sim.now, kind)
        if p.sessions == "lognormal" and p.churn > 0:
            heapq.heappush(self._departures, (self.sim.now + self._lifetime(initial), addr))
        self.sim.call(addr, lambda n, t: n.tune(self.sid, hosts, t))

    def leave(self, addr: tuple[str, int], polite: bool) -> None:
        st = self.stats[addr]
        st.left = self.sim.now
        self._discount_ahead(st, st.left)
        if polite:
            self.sim.call(addr, lambda n, t: n.leave(t))
            # it goes for good once its grace period is over
            peer = self.sim.peers[addr]
            self._pending_kill.append((self.sim.now + n_grace(peer), addr))
        else:
            self.sim.kill(addr)

    def _bin(self, t: float) -> int:
        """The 10-second bin of a deadline (one due at the very end is in the last bin)."""
        return min(int(t // BIN), math.ceil(self.p.minutes * 60 / BIN) - 1)

    def _discount_ahead(self, st: PeerStat, end: float) -> None:
        """Take the chunks due after ``end`` off the on-time counts (they were handed to the
        player early, but the listener is gone, or the run over, before they were due)."""
        for due, ok, strict in st.ahead:
            if due > end:
                st.on_time -= ok
                st.on_time_strict -= strict
                self._on_time_bins[self._bin(due)] -= ok
        st.ahead.clear()

    # ------------------------------------------------------------------ events

    def _on_event(self, peer: SimPeer, ev: Event) -> None:
        if type(ev) is not AudioData:
            if type(ev).__name__ == "Skipped":
                self.skipped += ev.count  # type: ignore[attr-defined]
            return
        st = self.stats.get(peer.addr)
        if st is None:  # the broadcaster
            seq = ev.seq
            while len(self.source_ts) <= seq:
                self.source_ts.append(ev.ts)
                self.source_times.append(self.sim.now)
                self.source_payload.append(ev.payload)
            return
        if st.kind is None:
            src = self.source_payload
            if ev.seq >= len(src) or src[ev.seq] != ev.payload:
                self.bad_bytes += len(ev.payload)  # (never, if forgeries are caught)
        if st.left is not None:  # (a polite leaver plays out its grace period: not counted)
            return
        now = self.sim.now
        if st.first_audio is None:
            st.first_audio = now
            st.ts0 = ev.ts
        due0 = st.first_audio + ((ev.ts - st.ts0) & 0xFFFFFFFF) / 1000
        if due0 >= self.p.warmup_seconds:
            strict = now <= due0 + 1e-9
            st.on_time_strict += strict
            due = due0
            sess = peer.node.sessions.get(self.tag)
            if sess is not None:  # the player's deadline: later after a rebuffer
                due = sess.play_t0 + ((ev.ts - sess.play_ts0) & 0xFFFFFFFF) / 1000
            ok = now <= due + 1e-9
            if ok:
                st.on_time += 1
                self._on_time_bins[self._bin(due0)] += 1
            ahead = st.ahead
            if (ok or strict) and due0 > now:
                ahead.append((due0, ok, strict))
            while ahead and ahead[0][0] <= now:  # (deadlines grow with seq)
                ahead.popleft()
        st.last_seq = ev.seq

    # ------------------------------------------------------------------ running

    def run(self) -> SimResult:
        p = self.p
        t_end = p.minutes * 60
        self._pending_kill: list[tuple[float, tuple[str, int]]] = []
        if p.sessions not in ("uniform", "lognormal"):
            raise ValueError(f"sessions must be 'uniform' or 'lognormal', not {p.sessions!r}")
        join_times = sorted(self.rng.uniform(0, p.ramp_seconds) for _ in range(p.peers))
        ji = 0
        churn_acc = 0.0
        step = 0.1
        next_sample = p.warmup_seconds
        wall0 = time.perf_counter()
        src_bytes0 = 0
        while self.sim.now < t_end - 1e-9:
            t = self.sim.now + step
            # broadcaster gets frames in real time
            due = int(t / self.frame_dt) - self.frames
            if due > 0:
                base = self.frames
                frames = [Frame(bytes([(base + k) % 251]) * self.frame_len) for k in range(due)]
                self.frames += due
                self.sim.call(self.src, lambda n, tt, f=frames: n.broadcast_frames(self.sid, f, tt))
            while ji < len(join_times) and join_times[ji] <= t:
                self.join(initial=True)
                ji += 1
            while self._departures and self._departures[0][0] <= t:
                _, addr = heapq.heappop(self._departures)
                if self.stats[addr].left is None:
                    self.leave(addr, polite=self.rng.random() < 0.5)
                    self.left_count += t >= p.warmup_seconds
                    self.join()
            if t > p.ramp_seconds and p.sessions == "uniform":
                churn_acc += p.churn * p.peers * step / 60
                while churn_acc >= 1:
                    churn_acc -= 1
                    live = [a for a, s in self.stats.items() if s.left is None]
                    if live:
                        self.leave(self.rng.choice(live), polite=self.rng.random() < 0.5)
                        self.left_count += t >= p.warmup_seconds
                    self.join()
            if p.crash_at is not None and self.sim.now < p.crash_at <= t:
                live = [a for a, s in self.stats.items() if s.left is None]
                for addr in self.rng.sample(live, round(p.crash_share * len(live))):
                    self.leave(addr, polite=False)
                    self.crashed += 1
            for when, addr in list(self._pending_kill):
                if when <= t:
                    self.sim.kill(addr)
                    self._pending_kill.remove((when, addr))
            if self.sim.now < p.warmup_seconds <= t:
                src_bytes0 = self.sim.peers[self.src].node.stats.bytes_out
                self.bytes_by_type = defaultdict(int)
            self.sim.run_until(t)
            if p.progress and int(t) % 60 == 0 and int(t - step) % 60 != 0:
                live = sum(1 for s in self.stats.values() if s.left is None)
                print(
                    f"sim: {t / 60:.0f} of {p.minutes:g} min, {live} peers, "
                    f"{time.perf_counter() - wall0:.0f} s wall",
                    file=sys.stderr,
                    flush=True,
                )
            if t >= next_sample:
                next_sample += getattr(self, "timeline_step", 10.0)
                self.timeline.append(self._sample(t))
        wall = time.perf_counter() - wall0
        return self._figures(t_end, wall, src_bytes0)

    def _sample(self, t: float) -> dict[str, Any]:
        depths: dict[str, list[int]] = {c: [] for c in CLASSES}
        for addr, st in self.stats.items():
            if st.left is not None:
                continue
            sess = self.sim.peers[addr].node.sessions.get(self.tag)
            if sess is not None and sess.parent is not None:
                depths[st.cls].append(sess.depth)
        return {"t": round(t, 1), "depths": depths}

    def _figures(self, t_end: float, wall: float, src_bytes0: int) -> SimResult:
        p = self.p
        ws = p.warmup_seconds
        ts = self.source_ts
        times = self.source_times
        expected = 0
        on_time = 0
        on_time_strict = 0
        never = 0
        h_expected = h_on_time = 0  # honest listeners only
        startups: list[float] = []
        due_bins: defaultdict[int, int] = defaultdict(int)
        for st in self.stats.values():
            if st.left is None:
                self._discount_ahead(st, t_end)
            if st.first_audio is None:
                if (st.left or t_end) - st.joined > 5.0:
                    never += 1
                continue
            if st.joined >= p.warmup_seconds:  # steady state: the stream has history
                startups.append(st.first_audio - st.joined)
            end = st.left if st.left is not None else t_end
            if end <= ws:
                continue
            # chunks this listener should have played inside the window: deadline in [ws, end]
            # deadline of seq s = first_audio + (ts_s - ts0); find the seq range by bisect
            lo = bisect.bisect_left(
                ts, st.ts0 + int((max(ws, st.first_audio) - st.first_audio) * 1000)
            )
            hi = bisect.bisect_right(ts, st.ts0 + int((end - st.first_audio) * 1000))
            # only chunks already produced can be due
            hi = min(hi, bisect.bisect_right(times, end))
            if hi > lo:
                expected += hi - lo
                on_time += min(st.on_time, hi - lo)
                on_time_strict += min(st.on_time_strict, hi - lo)
                if st.kind is None:
                    h_expected += hi - lo
                    h_on_time += min(st.on_time, hi - lo)
                # chunks due in each 10-second bin
                last = self._bin(end)
                for b in range(self._bin(max(ws, st.first_audio)), last + 1):
                    b_lo = bisect.bisect_left(ts, st.ts0 + int((b * BIN - st.first_audio) * 1000))
                    b_hi = (
                        hi
                        if b == last
                        else bisect.bisect_left(
                            ts, st.ts0 + int(((b + 1) * BIN - st.first_audio) * 1000)
                        )
                    )
                    if min(hi, b_hi) > max(lo, b_lo):
                        due_bins[b] += min(hi, b_hi) - max(lo, b_lo)
        depth_all: list[int] = []
        by_class: dict[str, list[int]] = {c: [] for c in CLASSES}
        for sample in self.timeline:
            for c, ds in sample["depths"].items():
                by_class[c] += ds
                depth_all += ds
        data = self.bytes_by_type.get(wire.DATA, 0)
        seal = self.bytes_by_type.get(wire.SEAL, 0)
        control = sum(v for k, v in self.bytes_by_type.items() if k not in (wire.DATA, wire.SEAL))
        src = self.sim.peers[self.src].node.stats.bytes_out - src_bytes0
        measured = t_end - ws
        startups.sort()
        resource = sum(CLASSES[s.cls][1] for s in self.stats.values()) / max(1, len(self.stats))
        repairs = sum(peer.node.stats.repairs_requested for peer in self.sim.peers.values())

        def pct(xs: list[float], q: float) -> float | None:
            """The q-quantile; None (JSON null, not NaN) when no listener started in the
            measured time."""
            if not xs:
                return None
            return round(xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))], 3)

        # continuity over time: chunks on time ÷ chunks due, by the bin of their deadline
        for sample in self.timeline:
            b = int((sample["t"] - 1e-6) // BIN)
            n = due_bins.get(b, 0)
            sample["continuity"] = round(self._on_time_bins[b] / n, 5) if n else None
        minutes: dict[int, list[int]] = {}
        for b in sorted(due_bins):
            m = minutes.setdefault(int(b * BIN // 60), [0, 0])
            m[0] += self._on_time_bins[b]
            m[1] += due_bins[b]
        figures = {
            "peers": p.peers,
            "peers_total": len(self.stats),
            "minutes": p.minutes,
            "churn_per_minute": p.churn,
            "sessions": p.sessions,
            "departures_per_minute": round(self.left_count / (measured / 60) / p.peers, 4),
            "seed": p.seed,
            "bitrate_kbps": p.bitrate_kbps,
            "resource_index": round(resource + p.source_upload / max(1, len(self.stats)), 3),
            "continuity": round(on_time / expected, 5) if expected else None,
            "continuity_strict": round(on_time_strict / expected, 5) if expected else None,
            "rebuffers": sum(
                peer.node.stats.reanchors for a, peer in self.sim.peers.items() if a in self.stats
            ),
            "chunks_due": expected,
            "never_started": never,
            "source_upload_ratio": round(src * 8 / (p.bitrate_kbps * 1000 * measured), 3),
            "startup_p50_s": pct(startups, 0.5),
            "startup_p95_s": pct(startups, 0.95),
            "depth_mean": round(statistics.fmean(depth_all), 2) if depth_all else None,
            "depth_max": max(depth_all) if depth_all else None,
            "depth_mean_by_class": {
                c: round(statistics.fmean(v), 2) if v else None for c, v in by_class.items()
            },
            "control_overhead": round(control / data, 4) if data else None,
            "auth_overhead": round(seal / data, 4) if data else None,
            "continuity_by_minute": [
                round(on / n, 4) if n else None for _m, (on, n) in sorted(minutes.items())
            ],
            "repairs": repairs,
            "malicious": p.malicious,
            "malicious_kind": p.malicious_kind if p.malicious > 0 else None,
            "malicious_peers": sum(1 for s in self.stats.values() if s.kind is not None),
            "honest_continuity": round(h_on_time / h_expected, 5) if h_expected else None,
            "bad_bytes_delivered": self.bad_bytes,
            "crashed": self.crashed,
            "honest_nodes": self._honest_counts(),
            "skipped_chunks": self.skipped,
            "datagrams_delivered": self.sim.delivered,
            "datagrams_lost": self.sim.lost,
            "uplink_queue_s": p.queue_s,
            "uplink_drops": self._uplink_drops(),
            "wall_s": round(wall, 1),
        }
        tree = []
        for addr, st in self.stats.items():
            if st.left is None:
                sess = self.sim.peers[addr].node.sessions.get(self.tag)
                if sess is not None and sess.parent is not None:
                    tree.append(
                        {"addr": addr, "parent": sess.parent, "depth": sess.depth, "cls": st.cls}
                    )
        return SimResult(figures, self.timeline, tree)

    def _uplink_drops(self) -> dict[str, int]:
        """Datagrams dropped by full uplink buffers (SimParams.queue_s), honest peers' and
        malicious ones' (a liar's link cannot carry what it took on)."""
        drops = {"honest": 0, "malicious": 0}
        for addr, peer in self.sim.peers.items():
            st = self.stats.get(addr)
            if st is not None:
                drops["honest" if st.kind is None else "malicious"] += peer.queue_drops
        return drops

    def _honest_counts(self) -> dict[str, int]:
        """What honest nodes (the broadcaster too) counted of forgeries, bans, floods and
        parents left for starving them (see Node._strike, Node._check_parent)."""
        out = dict.fromkeys(_HONEST_COUNTS, 0)
        for addr, peer in self.sim.peers.items():
            st = self.stats.get(addr)
            if st is not None and st.kind is not None:
                continue
            ns = peer.node.stats
            for k in _HONEST_COUNTS:
                out[k] += getattr(ns, k)
        return out


_HONEST_COUNTS = (
    "bad_chunks",
    "bad_seals",
    "bad_records",
    "bad_headers",
    "banned",
    "banned_dropped",
    "rate_limited",
    "starved",
    "reports_sent",
    "expelled",
    "orphan_releases",
    "challenges",
)


def n_grace(peer: SimPeer) -> float:
    return peer.node.config.leave_grace + 0.5


def run_sim(params: SimParams) -> SimResult:
    return Swarm(params).run()


def plot(result: SimResult, path: str, params: SimParams) -> None:
    """PNG: the tree (depth by capacity class) and depth over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    colors = {"fast": "tab:green", "medium": "tab:blue", "modem": "tab:red"}
    rng = random.Random(0)
    pos = {}
    by_depth: dict[int, int] = {}
    for n in sorted(result.tree, key=lambda n: n["depth"]):
        by_depth[n["depth"]] = by_depth.get(n["depth"], 0) + 1
        pos[n["addr"]] = (rng.random(), -n["depth"])
    for n in result.tree:
        x, y = pos[n["addr"]]
        px, py = pos.get(n["parent"], (0.5, 0))
        ax1.plot([px, x], [py, y], color="0.85", linewidth=0.3, zorder=1)
    for cls, c in colors.items():
        pts = [pos[n["addr"]] for n in result.tree if n["cls"] == cls]
        if pts:
            ax1.scatter([p[0] for p in pts], [p[1] for p in pts], s=4, color=c, label=cls, zorder=2)
    ax1.scatter([0.5], [0], s=40, color="black", label="broadcaster", zorder=3)
    ax1.set_title(f"Tree at the end ({len(result.tree)} listeners)")
    ax1.set_ylabel("- depth")
    ax1.set_xticks([])
    ax1.legend(loc="lower right", fontsize=8)
    ts = [s["t"] for s in result.timeline]
    for cls, c in colors.items():
        ys = [
            statistics.fmean(s["depths"][cls]) if s["depths"][cls] else float("nan")
            for s in result.timeline
        ]
        ax2.plot(ts, ys, color=c, label=f"{cls} mean depth")
    ax2.set_xlabel("simulated time (s)")
    ax2.set_ylabel("mean depth")
    ax3 = ax2.twinx()
    cont = [s.get("continuity") for s in result.timeline]
    ax3.plot(
        ts, [c if c is not None else float("nan") for c in cont], color="black",
        linewidth=1.2, label="continuity (per 10 s)",
    )  # fmt: skip
    ax3.set_ylabel("continuity")
    ax3.set_ylim(min([0.9] + [c for c in cont if c is not None]) - 0.01, 1.001)
    ax3.legend(loc="lower left", fontsize=8)
    f = result.figures
    ax2.set_title(f"continuity {f['continuity']}, startup p95 {f['startup_p95_s']} s")
    ax2.legend(fontsize=8)
    fig.suptitle(
        f"streamer sim: {params.peers} peers, {params.minutes:g} min, churn {params.churn:g}/min"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
