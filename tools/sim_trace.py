"""Trace missed chunks (who sent, lost, NACKed what).

`uv run python tools/sim_trace.py PEERS MINUTES SEED CHURN`
"""

import random
import struct
import sys
from collections import defaultdict

from streamerp2p import simrun
from streamerp2p.overlay import wire
from streamerp2p.overlay.node import Node

peers, minutes, seed, churn = (
    int(sys.argv[1]),
    float(sys.argv[2]),
    int(sys.argv[3]),
    float(sys.argv[4]),
)
p = simrun.SimParams(
    peers=peers, minutes=minutes, churn=churn, seed=seed, bitrate_kbps=128, warmup_seconds=60
)
sw = simrun.Swarm(p)
U32 = struct.Struct("!I")
U16 = struct.Struct("!H")
sent = defaultdict(list)  # (dst, seq) -> [(t, src)]
recv = defaultdict(list)  # (dst, seq) -> [(t, src)]
nack_sent = defaultdict(list)  # (asker, seq) -> [(t, target)]
nack_recv = defaultdict(list)  # (asker, seq) -> [(t, target)]


def nack_seqs(d):
    n = d[8]
    out = []
    for i in range(n):
        s = U32.unpack_from(d, 9 + 6 * i)[0]
        c = U16.unpack_from(d, 13 + 6 * i)[0]
        out += range(s, s + min(c, 64))
    return out


orig_drop = sw.sim.drop


def drop(src, dst, d):
    now = sw.sim.now
    if now > 55:
        if d[3] == wire.DATA:
            sent[(dst, U32.unpack_from(d, 8)[0])].append((now, src))
        elif d[3] == wire.NACK:
            for s in nack_seqs(d):
                nack_sent[(src, s)].append((now, dst))
    return orig_drop(src, dst, d)


sw.sim.drop = drop
orig_rd = Node.receive_datagram
addr_of = {}


def rd(self, data, addr, now):
    if now > 55 and len(data) > 12:
        me = addr_of.get(id(self))
        if data[3] == wire.DATA:
            recv[(me, U32.unpack_from(data, 8)[0])].append((now, addr))
        elif data[3] == wire.NACK:
            for s in nack_seqs(data):
                nack_recv[(addr, s)].append((now, me))
    return orig_rd(self, data, addr, now)


Node.receive_datagram = rd
orig_add = sw.sim.add


def add(node, addr, link):
    addr_of[id(node)] = addr
    return orig_add(node, addr, link)


sw.sim.add = add
for a, pe in sw.sim.peers.items():
    addr_of[id(pe.node)] = a
misses = []
orig_ev = sw._on_event


def on_event(peer, ev):
    if type(ev).__name__ == "Skipped" and sw.sim.now >= 65:
        st = sw.stats.get(peer.addr)
        if st is not None and st.left is None:
            sess = peer.node.sessions.get(sw.tag)
            misses.append(
                (
                    sw.sim.now,
                    peer.addr,
                    ev.first_seq,
                    ev.count,
                    sess.parent if sess else None,
                    st.cls,
                    sess.parent_spare if sess else None,
                    len(peer.node._helpers(sess, sw.sim.now)) if sess else None,
                )
            )
    orig_ev(peer, ev)


sw.sim.on_event = on_event
r = sw.run()
print("continuity", r.figures["continuity"], "misses", len(misses))
rng = random.Random(1)
cls_of = {a: s.cls for a, s in sw.stats.items()}
summary = defaultdict(int)
for _t, me, first, count, *_rest in misses:
    for seq in range(first, first + count):
        got_from = sent.get((me, seq), [])
        rec = recv.get((me, seq), [])
        ns = nack_sent.get((me, seq), [])
        nr = nack_recv.get((me, seq), [])
        key = (
            "sent" if got_from else "never-sent",
            "recv-late" if rec else "not-recv",
            f"nacks{min(len(ns), 3)}",
            f"nackrecv{min(len(nr), 3)}",
        )
        summary[key] += 1
for k, v in sorted(summary.items(), key=lambda kv: -kv[1])[:15]:
    print(v, k)
print("sample misses:")
for t, me, first, count, parent, cls, pspare, nh in rng.sample(misses, min(8, len(misses))):
    seq = first
    print(
        f"t={t:.2f} {me} {cls} seq={first}+{count} parent={parent}"
        f"({cls_of.get(parent, 'src')}) pspare={pspare} helpers={nh}"
    )
    print(
        "   data sent:",
        [(round(x, 2), s) for x, s in sent.get((me, seq), [])][:4],
        " recv:",
        [(round(x, 2), s) for x, s in recv.get((me, seq), [])][:3],
    )
    print(
        "   nacks sent:",
        [(round(x, 2), d, cls_of.get(d, "src")) for x, d in nack_sent.get((me, seq), [])][:6],
    )
    print("   nacks recv:", [(round(x, 2), d) for x, d in nack_recv.get((me, seq), [])][:6])
    print("   parent got it at:", [(round(x, 2), s) for x, s in recv.get((parent, seq), [])][:2])
